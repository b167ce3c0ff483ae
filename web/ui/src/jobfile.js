// Edits of a job file's text the editor makes for the user.

// parallelismOf reads a top-level `parallelism: N` of a job file.
export function parallelismOf(text) {
  const m = text.match(/^parallelism:\s*(\d+)\s*(#.*)?$/m);
  return m ? Number(m[1]) : null;
}

// withParallelism sets the top-level `parallelism:` line, adding it after
// `name:` (or first) when the file has none.
export function withParallelism(text, n) {
  if (/^parallelism:.*$/m.test(text)) return text.replace(/^parallelism:.*$/m, `parallelism: ${n}`);
  const lines = text.split('\n');
  const at = lines.findIndex((l) => /^name:/.test(l));
  lines.splice(at + 1, 0, `parallelism: ${n}`);
  return lines.join('\n');
}
