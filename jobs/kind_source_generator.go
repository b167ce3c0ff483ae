package jobs

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/runnel-dev/runnel/sources"
)

// SourceGenerator is the built-in synthetic source kind.
const SourceGenerator = "generator"

// RateMax as Generator.Rate means "as fast as the job consumes".
const RateMax = -1

// DefaultGeneratorRate is the generator's rate when none is set.
const DefaultGeneratorRate = 1000

// Generator configures the built-in synthetic source.
type Generator struct {
	// Rate is records per second over all shards, or RateMax. Default
	// DefaultGeneratorRate.
	Rate float64 `yaml:"rate"`
	// Keys is the number of distinct pages. Default 100.
	Keys int `yaml:"keys"`
	// Users is the number of distinct users. Default 1000.
	Users int `yaml:"users"`
	// Shape is the record shape. Default and only value: clickstream
	// ({page, user, latency_ms, status, country, ts, elapsed_ms}).
	Shape string `yaml:"shape"`
	// Count ends the source after this many records in total (spread over
	// the shards); 0 means unbounded.
	Count int64 `yaml:"count"`
	// Seed makes the generated records reproducible. Default 0.
	Seed uint64 `yaml:"seed"`
}

func init() {
	registerSource(&sourceKind{
		Name: SourceGenerator,
		Rank: 30,
		Fields: []Field{
			{"", "mapping", "—", "the built-in synthetic source"},
			{"rate", "number or `max`", "1000", "records/s over all shards, > 0, or `max` (as fast as the job consumes)"},
			{"keys", "int", "100", "number of distinct pages, ≥ 1"},
			{"users", "int", "1000", "number of distinct users (about 5% are bots, `bot-N`), ≥ 1"},
			{"shape", "string", "clickstream", "`clickstream`: `{page, user, latency_ms, status, country, ts, elapsed_ms}`; `ts` follows the wall clock, also after a restart; `elapsed_ms` is the generator's own clock (record index × interval), continuing across restarts"},
			{"count", "int", "0", "records in total before the source ends; 0 = unbounded"},
			{"seed", "int", "0", "any integer ≥ 0; same seed, same records"},
		},
		Has: func(s *Source) bool { return s.Generator != nil },
		Parse: func(p *parser, f fieldMap, s *Source) {
			if g, ok := p.optionalMapping(f, "generator"); ok {
				s.Generator = parseGenerator(p, g)
			}
		},
		NoFormat: "the generator makes JSON-like records; format does not apply",
		Validate: func(v *validator, s *Source) { validateGenerator(v, s.Generator) },
		Build: func(b *builder, s *Source) (sources.Source, error) {
			g := s.Generator
			rate := g.Rate
			if rate == RateMax {
				rate = 0
			}
			cfg := sources.GeneratorConfig{Shards: max(s.Shards, 1), Rate: rate, Keys: g.Keys,
				Users: g.Users, Seed: g.Seed, Count: g.Count}
			if b.env.preview != nil && rate > 0 {
				// A preview does not wait for the clock: the records come
				// at once, their event times spaced as at the rate.
				cfg.Step = time.Duration(float64(time.Second) * float64(cfg.Shards) / rate)
				cfg.Rate = 0
			}
			src, err := sources.NewGenerator(cfg)
			return src, wrapSourceErr(b, err)
		},
	})
}

func parseGenerator(p *parser, f fieldMap) *Generator {
	g := &Generator{}
	if n, path := p.scalar(f, "rate"); n != nil {
		if n.Value == "max" {
			g.Rate = RateMax
		} else if v, err := strconv.ParseFloat(n.Value, 64); err == nil && v > 0 && !math.IsInf(v, 0) && n.Style == 0 {
			g.Rate = v
		} else {
			p.problem(n, path, CodeInvalid, fmt.Sprintf("%q is not a rate", n.Value), "records per second (> 0) or max")
		}
	}
	g.Keys = int(p.integer(f, "keys", true))
	g.Users = int(p.integer(f, "users", true))
	g.Shape = p.str(f, "shape")
	g.Count = p.integer(f, "count", false)
	if n, path := p.scalar(f, "seed"); n != nil {
		v, err := strconv.ParseUint(n.Value, 10, 64)
		if err != nil {
			p.problem(n, path, CodeType, fmt.Sprintf("%q is not a non-negative integer", n.Value), "e.g. 42")
		}
		g.Seed = v
	}
	return g
}

func validateGenerator(v *validator, g *Generator) {
	const p = "source.generator"
	switch {
	case g.Rate == 0:
		g.Rate = DefaultGeneratorRate
	case (g.Rate <= 0 || math.IsNaN(g.Rate) || math.IsInf(g.Rate, 0)) && g.Rate != RateMax:
		v.add(p+".rate", CodeInvalid, fmt.Sprintf("%g is not a rate", g.Rate), "records per second (> 0) or max")
	}
	switch {
	case g.Keys == 0:
		g.Keys = 100
	case g.Keys < 0:
		v.add(p+".keys", CodeInvalid, fmt.Sprintf("%d is not a key count", g.Keys), "at least 1")
	}
	switch {
	case g.Users == 0:
		g.Users = 1000
	case g.Users < 0:
		v.add(p+".users", CodeInvalid, fmt.Sprintf("%d is not a user count", g.Users), "at least 1")
	}
	switch {
	case g.Shape == "":
		g.Shape = "clickstream"
	case g.Shape != "clickstream":
		v.add(p+".shape", CodeInvalid, fmt.Sprintf("%q is not a generator shape", g.Shape), "allowed: clickstream")
	}
	if g.Count < 0 {
		v.add(p+".count", CodeInvalid, "must not be negative", "0 means unbounded")
	}
}
