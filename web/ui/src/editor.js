// The new-job editor (loaded on demand: CodeMirror is the biggest part of
// the bundle). YAML highlighting, with the JavaScript inside job files —
// block scalars and scalars containing `=>` — highlighted as JS. Submit
// posts the text; a 400 puts each problem at its line (a lint diagnostic
// and a list entry); a 201 goes straight to the running job. Preview runs
// the file on recent records and shows each operator's rows and errors.
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
import { PreviewPanel } from './preview.js';
import { parallelismOf, withParallelism } from './jobfile.js';

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

const drafts = new Map(); // the editor text survives navigating away and back: '' for a new job, else the job id

// editorPage is the new-job editor, or with jobId the job's file to edit
// and redeploy (PUT /api/v1/jobs/{id}: a savepoint, a stop, the new file
// started from it).
export function editorPage(root, jobId = null) {
  // Submitting, previewing and redeploying need an admin (the server
  // refuses them to other roles): a lesser role reached here by a link
  // gets no editor whose every button would be refused.
  const role = document.body.dataset.role;
  if (['none', 'reader', 'writer'].includes(role)) {
    root.append(h('div', { class: 'page-head' }, h('h1', null, jobId ? `Edit ${jobId}` : 'New job')),
      h('p', { class: 'muted', dataset: { testid: 'editor-needs-admin' } },
        `Writing, previewing and deploying jobs needs an admin token; you are signed in as a ${role}. `,
        h('a', { href: jobId ? '#/jobs/' + enc(jobId) : '#/jobs' }, jobId ? '← job' : 'Jobs')));
    return null;
  }
  const key = jobId || '';
  const errors = h('ul', { class: 'problems', dataset: { testid: 'validation-errors' } });
  const submit = h('button', { class: 'primary', dataset: { testid: jobId ? 'redeploy-job' : 'submit-job' } }, jobId ? 'Redeploy' : 'Submit job');
  const reset = h('button', null, jobId ? 'Reset to the running file' : 'Reset to template');
  const status = h('span', { class: 'muted', dataset: { testid: 'editor-status' } });
  const host = h('div', { class: 'editor', dataset: { testid: 'job-editor' } });
  const preview = new PreviewPanel();
  const records = h('input', { type: 'number', min: 1, max: 100000, value: 1000, size: 7, dataset: { testid: 'preview-records' }, title: 'the last N records of each input stream (the first N of a file or generator)' });
  const previewBtn = h('button', { dataset: { testid: 'preview-job' } }, 'Preview');
  const parallelism = h('input', { type: 'number', min: 1, max: 1024, size: 4, dataset: { testid: 'parallelism-input' }, title: 'how many source shards the job reads (its source\'s shards:)' });
  // A 409 (state that does not fit the new file) explains itself and
  // offers to deploy without state.
  const conflict = h('div', { class: 'confirm', hidden: true, dataset: { testid: 'redeploy-conflict' } },
    h('span', { class: 'error', dataset: { testid: 'redeploy-conflict-message' } }),
    h('button', { class: 'danger', dataset: { testid: 'deploy-without-state' }, onclick: () => deploy('none') }, 'Deploy without state'),
    h('button', { onclick: () => { conflict.hidden = true; } }, 'Cancel'));
  root.append(
    h('div', { class: 'page-head' }, h('h1', null, jobId ? `Edit ${jobId}` : 'New job'), submit, previewBtn, h('label', null, 'records ', records), reset, status,
      jobId ? h('a', { href: '#/jobs/' + enc(jobId) }, '← job') : null),
    h('p', { class: 'muted' }, jobId
      ? ['Edit the job file and redeploy: a savepoint is taken, the job stops and the new file starts from it. Parallelism ', parallelism, ' (source shards: the ', h('code', null, 'shards:'), ' of the file\'s source).']
      : 'Edit the job file (YAML, with JavaScript snippets); Ctrl-Enter submits, Preview runs it on recent records without writing anything. The reference is docs/jobs.md.'),
    conflict, host, errors, preview.el);

  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: drafts.get(key) ?? (jobId ? '' : TEMPLATE),
      extensions: [
        keymap.of([{ key: 'Mod-Enter', run: () => { submit.click(); return true; } }]),
        basicSetup,
        new LanguageSupport(jobYaml),
        lintGutter(),
        EditorView.updateListener.of((u) => {
          if (!u.docChanged) return;
          const text = u.state.doc.toString();
          drafts.set(key, text);
          const p = parallelismOf(text);
          if (p != null && document.activeElement !== parallelism) parallelism.value = p;
        }),
      ],
    }),
  });
  // Tests and scripts set the text through this hook.
  host.cmView = view;
  const setText = (t) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: t } });

  let running = null; // the job's file as it runs
  if (jobId) {
    api('/jobs/' + enc(jobId)).then((job) => {
      running = job.spec || '';
      if (!drafts.has(key)) setText(running);
      const p = parallelismOf(view.state.doc.toString());
      parallelism.value = p ?? job.parallelism ?? '';
    }, (e) => { status.textContent = 'Cannot load the job: ' + e.message; });
    parallelism.addEventListener('change', () => {
      const n = Number(parallelism.value);
      if (Number.isInteger(n) && n >= 1) setText(withParallelism(view.state.doc.toString(), n));
    });
  }

  const clear = () => {
    errors.replaceChildren();
    conflict.hidden = true;
    view.dispatch(setDiagnostics(view.state, []));
  };
  reset.addEventListener('click', () => {
    setText(jobId ? running ?? '' : TEMPLATE);
    clear();
  });

  const deploy = async (from) => {
    submit.disabled = true;
    status.textContent = jobId ? 'redeploying…' : 'submitting…';
    clear();
    try {
      const body = view.state.doc.toString();
      const opts = { method: jobId ? 'PUT' : 'POST', headers: { 'Content-Type': 'application/yaml' }, body };
      const res = await api(jobId ? `/jobs/${enc(jobId)}?from=${from}` : '/jobs', opts);
      drafts.delete(key);
      status.textContent = '';
      location.hash = '#/jobs/' + enc(jobId || res.id);
    } catch (e) {
      status.textContent = '';
      if (jobId && e.status === 409) {
        conflict.querySelector('[data-testid=redeploy-conflict-message]').textContent = e.message;
        conflict.hidden = false;
      } else {
        showProblems(view, errors, e);
      }
    } finally {
      submit.disabled = false;
    }
  };
  submit.addEventListener('click', () => deploy('savepoint'));

  previewBtn.addEventListener('click', async () => {
    previewBtn.disabled = true;
    clear();
    preview.running();
    try {
      const n = Math.max(1, Math.min(100000, Number(records.value) || 1000));
      const res = await api(`/jobs/preview?records=${n}`, { method: 'POST', headers: { 'Content-Type': 'application/yaml' }, body: view.state.doc.toString() });
      preview.show(res);
    } catch (e) {
      preview.failed(e);
      if (e.status === 400) showProblems(view, errors, e);
    } finally {
      previewBtn.disabled = false;
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
