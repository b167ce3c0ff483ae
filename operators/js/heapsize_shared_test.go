package js

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The retained-memory walk of one VM reads nothing another VM of the same
// program writes: VMs share the program's source file, whose line table
// goja extends while it formats a stack trace (a thrown Error), on the
// other VM's goroutine. Run with -race: the walk read that table.
func TestRetainedWalkSkipsSharedSource(t *testing.T) {
	// A function that throws from line i+1 of its source for argument i,
	// so that every call makes goja scan the file further.
	var src strings.Builder
	src.WriteString("(i) => {\n")
	const lines = 100
	for i := range lines {
		fmt.Fprintf(&src, "  if (i === %d) throw new Error('line %d');\n", i, i)
	}
	src.WriteString("}")
	p, err := Compile("", Snippet{Name: "t", Src: src.String()})
	if err != nil {
		t.Fatal(err)
	}
	var vms [2]*VM
	for i := range vms {
		if vms[i], err = p.NewVM(Options{}); err != nil {
			t.Fatal(err)
		}
		defer vms[i].Close()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		vm := vms[0]
		for i := range lines {
			if _, err := vm.Call(vm.Func(0), vm.Runtime().ToValue(i)); err == nil {
				t.Errorf("call %d did not throw", i)
			}
		}
	}()
	for range lines {
		vms[1].measureRetained()
	}
	wg.Wait()
}
