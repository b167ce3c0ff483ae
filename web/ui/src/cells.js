// How a value reads in a table cell, whatever its Arrow or JSON type: a
// struct as `k: v` pairs, a list as [a, b], the detect operator's
// explanation ({field, direction, z}) as "views high z 18.9". Used by the
// live results table, the output panel and the preview, so a row reads the
// same wherever it is shown. No DOM here.

// cellText is the text of one cell. Top-level floats keep three decimals
// (so a column's digits line up); numbers inside a struct or list are
// shown as short as they read exactly to three decimals.
export function cellText(v) {
  if (v == null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === 'string') return explanationText(v) ?? v;
  return inner(v, 0);
}

// The depth a nested value is written out to; deeper parts read "…".
const MAX_DEPTH = 4;

function inner(v, depth) {
  if (v == null) return 'null';
  switch (typeof v) {
    case 'number': return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(3)));
    case 'bigint': return String(v);
    case 'string': return v;
    case 'boolean': return String(v);
    default: break;
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
  if (depth >= MAX_DEPTH) return '…';
  // A list is a JSON array, a typed array or an apache-arrow Vector; a
  // struct is a plain object or an apache-arrow StructRow. Both kinds of
  // arrow value give their plain form with toJSON.
  const j = typeof v.toJSON === 'function' ? v.toJSON() : v;
  if (Array.isArray(j) || ArrayBuffer.isView(j)) return '[' + Array.from(j, (x) => inner(x, depth + 1)).join(', ') + ']';
  if (j == null || typeof j !== 'object') return inner(j, depth);
  const ex = explanationOf(j);
  if (ex != null) return ex;
  const pairs = Object.entries(j).map(([k, x]) => `${k}: ${inner(x, depth + 1)}`).join(', ');
  return depth ? '{' + pairs + '}' : pairs;
}

// explanationOf formats a detect explanation: an object whose field and
// direction are strings and whose other fields, if any, are only z and
// contributions. Anything else is not one.
function explanationOf(o) {
  if (!o || typeof o.field !== 'string' || typeof o.direction !== 'string') return null;
  if (Object.keys(o).some((k) => !['field', 'direction', 'z', 'contributions'].includes(k))) return null;
  const parts = [o.field];
  if (o.direction) parts.push(o.direction);
  if (o.z != null && !Number.isNaN(Number(o.z))) parts.push('z ' + inner(Number(o.z), 1));
  return parts.join(' ');
}

// explanationText reads an explanation sent as a JSON string (what servers
// sent before the struct column); any other string gives null.
function explanationText(s) {
  if (s[0] !== '{' || !s.includes('"direction"')) return null;
  try { return explanationOf(JSON.parse(s)); } catch { return null; }
}
