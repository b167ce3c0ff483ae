package anomaly

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/runnel-dev/runnel/operators/anomaly/nab"
)

const nabDir = "/work/shared/nab"

func evalMethod(t *testing.T, corpus []nab.Series, cfg Config) []nab.File {
	files := make([]nab.File, len(corpus))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, s := range corpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := ScoreSeries(cfg, s.Timestamps, s.Values)
			if err != nil {
				t.Error(err)
				return
			}
			sc := make([]float64, len(res))
			for j, r := range res {
				sc[j] = r.Score
			}
			files[i] = nab.File{Name: s.Name, Scores: sc, Windows: s.Windows}
		}()
	}
	wg.Wait()
	return files
}

func TestNABDev(t *testing.T) {
	if os.Getenv("NABDEV") == "" {
		t.Skip()
	}
	corpus, err := nab.LoadCorpus(nabDir+"/data", nabDir+"/labels.json")
	if err != nil {
		t.Fatal(err)
	}
	tune := func(name string, p *float64) {
		if v := os.Getenv(name); v != "" {
			f, _ := strconv.ParseFloat(v, 64)
			*p = f
		}
	}
	tunei := func(name string, p *int) {
		if v := os.Getenv(name); v != "" {
			f, _ := strconv.Atoi(v)
			*p = f
		}
	}
	tune("DAMP", &damp)
	tunei("CALSHORT", &calShort)
	tunei("CALHIST", &calHistory)
	tunei("CALWARM", &calWarmup)
	tunei("BASE", &baselineSize)
	tune("NA", &noveltyAlarm)
	tune("GATE", &noiseGate)
	tune("JR", &jumpRange)
	tune("KAL", &knnAlarmLow)
	tune("KZ", &knnZAlarm)
	tune("JN", &jumpNoise)
	tune("KA", &knnAlarm)
	tune("RA", &rcfAlarm)
	tunei("WARM", &warmup)
	if e := os.Getenv("ENS"); e != "" {
		ensembleModels = uses{strings.Contains(e, "nov"), strings.Contains(e, "knn"), strings.Contains(e, "rcf")}
	}
	var cfg Config
	tunei("SH", &cfg.ShingleSize)
	tunei("SEG", &cfg.Segment)
	tunei("K", &cfg.Neighbours)
	tunei("HIST", &cfg.History)
	tunei("SUP", &cfg.Suppress)
	tunei("TREES", &cfg.Trees)
	tunei("SS", &cfg.SampleSize)
	for _, m := range strings.Split(os.Getenv("NABDEV"), ",") {
		cfg.Method = m
		files := evalMethod(t, corpus, cfg)
		for _, p := range nab.Profiles {
			r := nab.Score(files, p)
			t.Logf("%s %s: %.2f (thr %.4f)", m, p.Name, r.Normalised, r.Threshold)
			if p.Name == "standard" && os.Getenv("V") != "" {
				for _, f := range r.Files {
					t.Logf("  %-60s raw %6.2f tp %d fp %d fn %d", f.Name, f.Raw, f.TP, f.FP, f.FN)
				}
			}
		}
	}
}

func TestNABPeek(t *testing.T) {
	name := os.Getenv("PEEK")
	if name == "" {
		t.Skip()
	}
	corpus, err := nab.LoadCorpus(nabDir+"/data", nabDir+"/labels.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range corpus {
		if !strings.Contains(s.Name, name) {
			continue
		}
		res, _ := ScoreSeries(Config{Method: os.Getenv("M")}, s.Timestamps, s.Values)
		t.Logf("%s n=%d probation=%d windows=%v", s.Name, len(res), nab.ProbationLength(len(res)), s.Windows)
		for i, r := range res {
			if r.Score > 0.4 {
				t.Logf("  %5d %.3f v=%.3f exp=%.3f", i, r.Score, s.Values[i], r.Expected[0])
			}
		}
	}
}
