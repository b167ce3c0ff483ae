package anomaly

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/runnel-dev/runnel/operators/anomaly/nab"
)

// ScoreCorpus runs a fresh detector for cfg over every series of a NAB
// corpus, files in parallel, and returns the scores for nab.Score. Each
// file is scored exactly as `runnel detect` scores it: one Score call per
// point, in order, with no knowledge of labels.
func ScoreCorpus(cfg Config, corpus []nab.Series) ([]nab.File, error) {
	files := make([]nab.File, len(corpus))
	errs := make([]error, len(corpus))
	work := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range work {
				s := corpus[i]
				res, err := ScoreSeries(cfg, s.Timestamps, s.Values)
				if err != nil {
					errs[i] = fmt.Errorf("score %s: %w", s.Name, err)
					continue
				}
				scores := make([]float64, len(res))
				for j, r := range res {
					scores[j] = r.Score
				}
				files[i] = nab.File{Name: s.Name, Scores: scores, Windows: s.Windows}
			}
		})
	}
	for i := range corpus {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}
