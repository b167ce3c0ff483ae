// Edits of a job file's text the editor makes for the user. A job's
// parallelism is the number of source shards it reads: `shards:` of its
// `source:` (a stream's shard count if the stream is created, a
// generator's shards).

// sourceShards finds the source's `shards:` in text: {line, value} of the
// line that has it (value null when there is none), and where to add one.
function sourceShards(lines) {
  const at = lines.findIndex((l) => /^source:/.test(l));
  if (at < 0) return null;
  const rest = lines[at].replace(/^source:\s*/, '');
  if (rest.startsWith('{')) {
    const m = rest.match(/\bshards:\s*(\d+)/);
    return { flow: true, line: at, value: m ? Number(m[1]) : null };
  }
  let indent = null;
  for (let i = at + 1; i < lines.length; i++) {
    const l = lines[i];
    if (!l.trim() || /^\s*#/.test(l)) continue;
    const ind = l.match(/^(\s*)/)[1];
    if (!ind) break; // the next top-level key
    if (indent == null) indent = ind;
    if (ind !== indent) continue;
    const m = l.match(/^\s*shards:\s*(\d+)/);
    if (m) return { line: i, indent, value: Number(m[1]) };
  }
  return { line: -1, after: at, indent: indent ?? '  ', value: null };
}

// parallelismOf reads the source's `shards:` of a job file, or null.
export function parallelismOf(text) {
  const s = sourceShards(text.split('\n'));
  return s ? s.value : null;
}

// withParallelism sets the source's `shards:` to n, adding it when the
// file has none; a file without a source is left as it is.
export function withParallelism(text, n) {
  const lines = text.split('\n');
  const s = sourceShards(lines);
  if (!s) return text;
  if (s.flow) {
    lines[s.line] = s.value != null ? lines[s.line].replace(/\bshards:\s*\d+/, `shards: ${n}`) : lines[s.line].replace(/\}(\s*(#.*)?)$/, `, shards: ${n}}$1`);
  } else if (s.line >= 0) {
    lines[s.line] = lines[s.line].replace(/shards:\s*\d+/, `shards: ${n}`);
  } else {
    lines.splice(s.after + 1, 0, `${s.indent}shards: ${n}`);
  }
  return lines.join('\n');
}
