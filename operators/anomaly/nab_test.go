package anomaly_test

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/operators/anomaly/nab"
)

const nabDir = "/work/shared/nab"

func evalMethod(t *testing.T, corpus []nab.Series, cfg anomaly.Config) []nab.File {
	files := make([]nab.File, len(corpus))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, s := range corpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := anomaly.ScoreSeries(cfg, s.Timestamps, s.Values)
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
	for _, m := range strings.Split(os.Getenv("NABDEV"), ",") {
		files := evalMethod(t, corpus, anomaly.Config{Method: m})
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
