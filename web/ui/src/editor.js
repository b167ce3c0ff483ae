// The new-job editor (loaded on demand: CodeMirror is the biggest part of
// the bundle). YAML highlighting, with the JavaScript inside job files —
// block scalars and scalars containing `=>` — highlighted as JS. Submit
// posts the text; a 400 puts each problem at its line (a lint diagnostic
// and a list entry); a 201 goes straight to the running job.
import { EditorView, basicSetup } from 'codemirror';
import { keymap } from '@codemirror/view';
import { EditorState } from '@codemirror/state';
import { LanguageSupport } from '@codemirror/language';
import { yamlLanguage } from '@codemirror/lang-yaml';
import { javascriptLanguage } from '@codemirror/lang-javascript';
import { parseMixed } from '@lezer/common';
import { setDiagnostics, lintGutter } from '@codemirror/lint';
import { api, h, enc } from './api.js';
import { problemsOf } from './problems.js';

export const TEMPLATE = `# A job file: see docs/jobs.md. Submit runs it at once.
name: my-page-views
source:
  generator: {rate: 2000, keys: 20}
  event_time: "r => r.ts"
  watermark: 2s
functions: |
  function isBot(u) { return u.startsWith("bot-") }
operators:
  - id: humans
    filter: "r => !isBot(r.user)"
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 5s
      aggregate:
        views: count
        p95_ms: p95(latency_ms)
  - id: spikes
    detect: {value: views}
sinks:
  - {id: board, dashboard: {title: "Views per page"}}
`;

const jobYaml = yamlLanguage.configure({
  wrap: parseMixed((node, input) => {
    if (node.name === 'BlockLiteralContent') return { parser: javascriptLanguage.parser };
    if (node.name === 'QuotedLiteral' || node.name === 'Literal') {
      const text = input.read(node.from, node.to);
      if (!text.includes('=>')) return null;
      if (node.name === 'QuotedLiteral') {
        if (node.to - node.from < 2) return null;
        return { parser: javascriptLanguage.parser, overlay: [{ from: node.from + 1, to: node.to - 1 }] };
      }
      return { parser: javascriptLanguage.parser };
    }
    return null;
  }),
}, 'job-yaml');

let draft = null; // the editor text survives navigating away and back

export function editorPage(root) {
  const errors = h('ul', { class: 'problems', dataset: { testid: 'validation-errors' } });
  const submit = h('button', { class: 'primary', dataset: { testid: 'submit-job' } }, 'Submit job');
  const reset = h('button', null, 'Reset to template');
  const status = h('span', { class: 'muted' });
  const host = h('div', { class: 'editor', dataset: { testid: 'job-editor' } });
  root.append(
    h('div', { class: 'page-head' }, h('h1', null, 'New job'), submit, reset, status),
    h('p', { class: 'muted' }, 'Edit the job file (YAML, with JavaScript snippets); Ctrl-Enter submits. The reference is docs/jobs.md.'),
    host, errors);

  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: draft ?? TEMPLATE,
      extensions: [
        keymap.of([{ key: 'Mod-Enter', run: () => { submit.click(); return true; } }]),
        basicSetup,
        new LanguageSupport(jobYaml),
        lintGutter(),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) draft = u.state.doc.toString();
        }),
      ],
    }),
  });
  // Tests and scripts set the text through this hook.
  host.cmView = view;

  reset.addEventListener('click', () => {
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: TEMPLATE } });
    view.dispatch(setDiagnostics(view.state, []));
    errors.replaceChildren();
  });

  submit.addEventListener('click', async () => {
    submit.disabled = true;
    status.textContent = 'submitting…';
    errors.replaceChildren();
    view.dispatch(setDiagnostics(view.state, []));
    try {
      const res = await api('/jobs', { method: 'POST', headers: { 'Content-Type': 'application/yaml' }, body: view.state.doc.toString() });
      draft = null;
      status.textContent = '';
      location.hash = '#/jobs/' + enc(res.id);
    } catch (e) {
      status.textContent = '';
      showProblems(view, errors, e);
    } finally {
      submit.disabled = false;
    }
  });
  return () => view.destroy();
}

function showProblems(view, list, err) {
  const doc = view.state.doc;
  const problems = problemsOf(err);
  const diags = [];
  for (const p of problems) {
    const has = p.line >= 1 && p.line <= doc.lines;
    list.append(h('li', { class: 'error', dataset: { testid: 'validation-error', line: has ? p.line : '' } },
      has ? h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); jump(view, p.line); } }, `line ${p.line}`) : null,
      has ? ': ' : '', p.message));
    if (has) {
      const line = doc.line(p.line);
      const from = Math.min(line.to, line.from + Math.max(0, p.column - 1));
      diags.push({ from, to: line.to > from ? line.to : from, severity: 'error', message: p.message, source: p.code });
    }
  }
  view.dispatch(setDiagnostics(view.state, diags));
  if (problems[0] && problems[0].line >= 1) jump(view, problems[0].line);
}

function jump(view, n) {
  const line = view.state.doc.line(Math.min(n, view.state.doc.lines));
  view.dispatch({ selection: { anchor: line.from }, effects: EditorView.scrollIntoView(line.from, { y: 'center' }) });
  view.focus();
}
