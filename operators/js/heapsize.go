package js

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/dop251/goja/file"
)

// checkRetained measures the memory the VM's values hold, each time
// calls (and whatever else the process did meanwhile) allocated another
// retained.every bytes, and fails when it grew by more than
// Options.MaxRetained since setup. The measure walks everything the
// runtime reaches, so its interval grows with what it found (keeping its
// cost a fraction of the allocation it follows) but stays under half
// the limit (bounding the overshoot).
func (vm *VM) checkRetained() error {
	if vm.retained.every == 0 || allocBytes()-vm.retained.at < vm.retained.every {
		return nil
	}
	return vm.checkRetainedNow()
}

// checkRetainedNow is checkRetained without waiting for the next stretch
// of allocation.
func (vm *VM) checkRetainedNow() error {
	if vm.retained.every == 0 {
		return nil
	}
	vm.measureRetained()
	held := vm.retained.last - min(vm.retained.base, vm.retained.last)
	if held > vm.opts.MaxRetained {
		return fmt.Errorf("%w: the job's JavaScript keeps %d MiB between calls (in globals, closures or accumulators), over the limit of %d MiB",
			ErrRetained, held>>20, vm.opts.MaxRetained>>20)
	}
	return nil
}

// measureRetained walks the runtime and sets when to measure next.
func (vm *VM) measureRetained() {
	r := &vm.retained
	r.last, r.at = reachableBytes(vm.rt), allocBytes()
	r.every = max(vm.opts.MaxHeapGrowth, min(2*r.last, vm.opts.MaxRetained/2))
}

// reachableBytes estimates the bytes of Go memory reachable from root:
// each pointed-to value, slice backing array, string and map entry counted
// once. Functions, channels and unsafe pointers are not followed (goja
// keeps a script's values in its own structures, not in Go closures).
// The walk reads without locks, so nothing may change the graph while it
// runs: call it only between calls into the VM, on the VM's goroutine.
func reachableBytes(root any) uint64 {
	w := sizeWalker{seen: map[block]struct{}{}, ptrs: map[reflect.Type]bool{}}
	v := reflect.ValueOf(root)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		w.pointee(v)
	} else {
		w.value(v)
	}
	for len(w.todo) > 0 {
		v := w.todo[len(w.todo)-1]
		w.todo = w.todo[:len(w.todo)-1]
		w.value(v)
	}
	return w.total
}

type sizeWalker struct {
	seen  map[block]struct{} // memory counted
	todo  []reflect.Value
	total uint64
	ptrs  map[reflect.Type]bool // hasPointers by type
}

// refs reports whether values of type t can refer to other memory.
func (w *sizeWalker) refs(t reflect.Type) bool {
	p, ok := w.ptrs[t]
	if !ok {
		p = hasPointers(t)
		w.ptrs[t] = p
	}
	return p
}

// block is a piece of memory by address and size: a struct and its
// first field share an address, and each must be walked.
type block struct{ p, size uintptr }

// first reports whether the block is met for the first time.
func (w *sizeWalker) first(p, size uintptr) bool {
	b := block{p, size}
	if _, ok := w.seen[b]; ok {
		return false
	}
	w.seen[b] = struct{}{}
	return true
}

// sharedFile is goja's source file of a compiled program. Every VM of
// the program shares it, and goja extends its line table (under the
// file's lock) while it formats a stack trace, on whichever goroutine
// runs that VM: the walk, which takes no locks, must not read it. It is
// the program's source, not memory the VM's values hold.
var sharedFile = reflect.TypeFor[file.File]()

// pointee counts what the non-nil pointer v points to and queues it.
func (w *sizeWalker) pointee(v reflect.Value) {
	e := v.Type().Elem()
	if e == sharedFile {
		return
	}
	if !w.first(uintptr(v.UnsafePointer()), e.Size()) {
		return
	}
	w.total += uint64(e.Size())
	if w.refs(e) {
		w.todo = append(w.todo, v.Elem())
	}
}

// value follows the references held inside v (whose own bytes are
// already counted by its container).
func (w *sizeWalker) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			w.pointee(v)
		}
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		if e.Kind() == reflect.Pointer {
			if !e.IsNil() {
				w.pointee(e)
			}
			return
		}
		// A non-pointer value in an interface is boxed on the heap.
		w.total += uint64(e.Type().Size())
		w.value(e)
	case reflect.String:
		if v.Len() > 0 && w.first(uintptr(unsafe.Pointer(unsafe.StringData(v.String()))), uintptr(v.Len())) {
			w.total += uint64(v.Len())
		}
	case reflect.Slice:
		if v.Cap() == 0 || v.IsNil() {
			return
		}
		et := v.Type().Elem()
		if !w.first(uintptr(v.UnsafePointer()), uintptr(v.Cap())*et.Size()) {
			return
		}
		w.total += uint64(v.Cap()) * uint64(et.Size())
		if w.refs(et) {
			for i := 0; i < v.Len(); i++ {
				w.value(v.Index(i))
			}
		}
	case reflect.Array:
		if w.refs(v.Type().Elem()) {
			for i := 0; i < v.Len(); i++ {
				w.value(v.Index(i))
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if w.refs(v.Type().Field(i).Type) {
				w.value(v.Field(i))
			}
		}
	case reflect.Map:
		if v.IsNil() || !w.first(uintptr(v.UnsafePointer()), 0) {
			return
		}
		kt, et := v.Type().Key(), v.Type().Elem()
		// Entries plus the table's slack and per-slot control bytes.
		w.total += uint64(v.Len()) * (uint64(kt.Size()) + uint64(et.Size()) + 1) * 9 / 8
		walkK, walkE := w.refs(kt), w.refs(et)
		if walkK || walkE {
			it := v.MapRange()
			for it.Next() {
				if walkK {
					w.value(it.Key())
				}
				if walkE {
					w.value(it.Value())
				}
			}
		}
	}
}

// hasPointers reports whether values of type t can refer to other memory.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128,
		reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}
