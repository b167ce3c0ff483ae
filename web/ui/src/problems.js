// Validation problems of a rejected job file, as the editor shows them.

// problemsOf turns an API error into [{line, column, message}]; a problem
// inside a JS snippet also says where in the snippet.
export function problemsOf(err) {
  const d = err.detail || {};
  const list = Array.isArray(d.problems) && d.problems.length ? d.problems : [{ line: d.line, field: d.field, message: d.message || err.message }];
  return list.map((p) => {
    let msg = p.message || '';
    if (p.field && !msg.includes(p.field)) msg = `${p.field}: ${msg}`;
    if (p.operator && p.js_line) msg += ` (operator ${p.operator}, snippet line ${p.js_line}${p.js_column ? ':' + p.js_column : ''})`;
    if (p.hint) msg += ` — ${p.hint}`;
    return { line: p.line || 0, column: p.column || 0, message: msg, code: p.code || d.code };
  });
}
