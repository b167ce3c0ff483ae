package js

import (
	"fmt"

	"github.com/dop251/goja"
)

// guardNatives wraps the builtins that build a value whose size is not
// bounded by their inputs' sizes — replace and replaceAll (a replacement
// per match), concat, join over long elements, flat of a shared nested
// array, JSON.stringify of an object graph that shares children or is
// indented deeply, String.raw — so that each checks the size of its result
// against Options.MaxStringLen before or while the native code builds it.
// It also caps the length of arrays the iterating builtins walk, since an
// array's length can be set to 2^32-1 without allocating and a native loop
// over it cannot be interrupted. A check that fails throws a JS error
// saying what was too large.
func (vm *VM) guardNatives() error {
	rt := vm.rt
	limit := vm.opts.MaxStringLen
	check := rt.ToValue(func(n float64, what string) {
		if n > float64(limit) {
			vm.throwTooBig(what)
		}
	})
	f, err := rt.RunString(guardSrc)
	if err != nil {
		return fmt.Errorf("js: sandbox: %w", err)
	}
	install, _ := goja.AssertFunction(f)
	if _, err := install(goja.Undefined(), check, rt.ToValue(limit)); err != nil {
		return fmt.Errorf("js: sandbox: %w", err)
	}
	return nil
}

// guardSrc installs the guards; check(n, what) throws when n > limit.
const guardSrc = `(function (check, L) {
	var S = String.prototype, A = Array.prototype, def = Object.defineProperty;
	function put(o, name, f) { def(o, name, {value: f, writable: true, configurable: true, enumerable: false}); }
	function len(x) { return x === null || x === undefined ? 0 : String(x).length; }
	function dollars(r) { var n = 0; for (var i = r.indexOf("$"); i >= 0; i = r.indexOf("$", i + 1)) n++; return n; }
	function guardReplace(name) {
		var orig = S[name];
		put(S, name, function (pattern, repl) {
			if (this === null || this === undefined) return orig.call(this, pattern, repl);
			var s = String(this), total = s.length;
			if (typeof repl === "function") {
				var fn = repl;
				return orig.call(s, pattern, function () {
					var v = String(fn.apply(undefined, arguments));
					total += v.length; check(total, name + " result");
					return v;
				});
			}
			var r = String(repl);
			if (s.length + (s.length + 1) * r.length <= L) return orig.call(s, pattern, r);
			// A dry run counts the matches; each inserts at most r plus,
			// per "$", the longest text a pattern can stand for.
			var k = dollars(r), whole = r.indexOf("$\u0060") >= 0 || r.indexOf("$'") >= 0;
			orig.call(s, pattern, function () {
				var most = 0;
				if (k > 0) {
					if (whole) most = s.length;
					else for (var i = 0; i < arguments.length - 2; i++) most = Math.max(most, len(arguments[i]));
				}
				total += r.length + k * most; check(total, name + " result");
				return "";
			});
			return orig.call(s, pattern, r);
		});
	}
	guardReplace("replace"); guardReplace("replaceAll");
	var sconcat = S.concat;
	put(S, "concat", function () {
		var n = len(this);
		for (var i = 0; i < arguments.length; i++) n += len(arguments[i]);
		check(n, "concat result");
		return sconcat.apply(this, arguments);
	});
	var aconcat = A.concat;
	put(A, "concat", function () {
		var n = Object(this).length >>> 0;
		for (var i = 0; i < arguments.length; i++) {
			var a = arguments[i];
			n += Array.isArray(a) ? a.length : 1;
		}
		check(n, "concat result");
		return aconcat.apply(this, arguments);
	});
	var join = A.join;
	put(A, "join", function (sep) {
		var o = Object(this), n = o.length >>> 0, s = sep === undefined ? 1 : len(sep);
		check(n * s, "join result");
		var total = n * s;
		for (var i = 0; i < n; i++) { total += len(o[i]); check(total, "join result"); }
		return join.call(this, sep);
	});
	function leaves(a, depth, budget) {
		var n = 0;
		for (var i = 0; i < a.length; i++) {
			var e = a[i];
			n += depth > 0 && Array.isArray(e) ? leaves(e, depth - 1, budget - n) : 1;
			if (n > budget) check(n + L, "flat result");
		}
		return n;
	}
	var flat = A.flat;
	put(A, "flat", function (depth) {
		var d = depth === undefined ? 1 : Number(depth);
		check(Object(this).length >>> 0, "array");
		leaves(Object(this), d !== d ? 0 : Math.min(d, 1e4), L);
		return flat.apply(this, arguments);
	});
	["map", "filter", "forEach", "reduce", "reduceRight", "indexOf", "lastIndexOf", "includes", "find", "findIndex",
	 "findLast", "findLastIndex", "some", "every", "sort", "reverse", "slice", "splice", "copyWithin", "flatMap",
	 "toSorted", "toReversed", "toSpliced", "with", "keys", "values", "entries"].forEach(function (name) {
		var orig = A[name];
		if (typeof orig !== "function") return;
		put(A, name, {[name]: function () {
			check(Object(this).length >>> 0, "array");
			return orig.apply(this, arguments);
		}}[name]);
	});
	var stringify = JSON.stringify;
	put(JSON, "stringify", function (value, replacer, space) {
		var gap = typeof space === "number" ? Math.max(0, Math.min(10, Math.floor(space))) :
			typeof space === "string" ? Math.min(10, space.length) : 0;
		var total = 0, depth = gap > 0 ? new Map() : null;
		function count(holder, key, v) {
			var d = 0;
			if (depth) { d = (depth.get(holder) || 0) + 1; if (v !== null && typeof v === "object") depth.set(v, d); }
			total += String(key).length + 4 + d * gap + (typeof v === "string" ? v.length : 0);
			check(total, "JSON.stringify result");
		}
		if (Array.isArray(replacer)) {
			// Dry run with the same keys, then the real one.
			var allowed = new Set(replacer.map(String));
			stringify(value, function (k, v) {
				if (k !== "" && !Array.isArray(this) && !allowed.has(k)) return undefined;
				count(this, k, v);
				return v;
			});
			return stringify(value, replacer, space);
		}
		var user = typeof replacer === "function" ? replacer : null;
		return stringify(value, function (k, v) {
			if (user) v = user.call(this, k, v);
			count(this, k, v);
			return v;
		}, space);
	});
	var raw = String.raw;
	put(String, "raw", function (strings) {
		var r = Object(Object(strings).raw), n = r.length >>> 0;
		check(n, "String.raw result");
		var total = 0;
		for (var i = 0; i < n; i++) total += len(r[i]);
		for (var j = 1; j < arguments.length && j < n; j++) total += len(arguments[j]);
		check(total, "String.raw result");
		return raw.apply(String, arguments);
	});
})`

// throwTooBig throws a JS RangeError saying what exceeded
// Options.MaxStringLen.
func (vm *VM) throwTooBig(what string) {
	msg := fmt.Sprintf("%s larger than the sandbox limit of %d characters or elements", what, vm.opts.MaxStringLen)
	if ctor, ok := goja.AssertConstructor(vm.rt.Get("RangeError")); ok {
		if e, err := ctor(nil, vm.rt.ToValue(msg)); err == nil {
			panic(e)
		}
	}
	panic(vm.rt.NewGoError(fmt.Errorf("%s", msg)))
}
