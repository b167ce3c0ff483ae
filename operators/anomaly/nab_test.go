package anomaly

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-dev/runnel/operators/anomaly/nab"
)

// nabDir is the evaluation corpus shipped with the project's shared data.
const nabDir = "/work/shared/nab"

// nabFloor is each method's NAB standard-profile score on nabDir, as
// measured when its tuning was last changed, less about one point: a
// regression guard, not a target.
var nabFloor = map[string]float64{
	MethodEnsemble: 72.5, // measured 73.55
	MethodNovelty:  68,   // measured 69.16
	MethodKNN:      37.5, // measured 38.51
	MethodRCF:      48,   // measured 49.45
}

// TestNABScores scores every method on the NAB corpus and fails if one
// falls below its floor. rcf, the slow one, is skipped with -short.
func TestNABScores(t *testing.T) {
	if _, err := os.Stat(filepath.Join(nabDir, "labels.json")); err != nil {
		t.Skipf("NAB corpus not available: %v", err)
	}
	corpus, err := nab.LoadCorpus(filepath.Join(nabDir, "data"), filepath.Join(nabDir, "labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ConcreteMethods {
		if m == MethodRCF && testing.Short() {
			continue
		}
		files, err := ScoreCorpus(Config{Method: m}, corpus)
		if err != nil {
			t.Fatal(err)
		}
		r := nab.Score(files, nab.Standard)
		t.Logf("%-8s NAB standard %.2f (threshold %.4f)", m, r.Normalised, r.Threshold)
		if r.Normalised < nabFloor[m] {
			t.Errorf("%s: NAB standard score %.2f fell below its floor %.1f", m, r.Normalised, nabFloor[m])
		}
	}
}
