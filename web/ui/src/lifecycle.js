// The lifecycle controls of the job page (admins only; the server refuses
// them for other roles anyway): stop (asks first), resume, restart from a
// chosen checkpoint or savepoint (a job on Kafka workers has neither: it
// restarts from the beginning), take a savepoint, edit and redeploy (the
// editor at #/jobs/ID/edit), delete with its state (asks first). Which
// buttons show follows the job's state; every answer, good or bad, is said
// in the note beside them.
import { api, enc, h, fmtTime, fmtBytes, confirmBar, jsonBody } from './api.js';

export class Lifecycle {
  constructor(id) {
    this.id = id;
    this.state = null;
    const path = '/jobs/' + enc(id);
    const btn = (label, testid, onclick, cls) => h('button', { class: cls || null, 'data-needs': 'admin', hidden: true, dataset: { testid }, onclick }, label);
    this.note = h('span', { class: 'muted', dataset: { testid: 'lifecycle-note' } });
    // Stopping asks first: the job's sources stop at a last checkpoint and
    // it stays stopped until resumed.
    this.stopConfirm = confirmBar('stop-confirm', `Stop ${id}? Its sources stop at a last checkpoint; it stays stopped until you resume it.`, [
      ['Stop', 'confirm-stop', () => this.stop(false), 'danger'],
      ['Stop with a savepoint', 'confirm-stop-savepoint', () => this.stop(true)],
    ]);
    this.deleteConfirm = confirmBar('delete-confirm', `Delete ${id} with its checkpoints and state? This cannot be undone (its savepoints stay).`, [
      ['Delete', 'confirm-delete', () => this.remove(), 'danger'],
    ]);
    this.stopBtn = btn('Stop…', 'stop-job', () => { this.deleteConfirm.hidden = true; this.stopConfirm.ask(); }, 'danger');
    this.resumeBtn = btn('Resume', 'resume-job', () => this.act(this.resumeBtn, () => 'Resumed from the latest checkpoint.', path + '/resume', { method: 'POST' }));
    this.restartBtn = btn('Restart from…', 'restart-job', () => this.openPicker());
    this.savepointBtn = btn('Take savepoint', 'take-savepoint', () => this.act(this.savepointBtn, (r) => `Savepoint ${r.name} taken.`, path + '/savepoints', { method: 'POST' }));
    this.editBtn = h('a', { class: 'button', 'data-needs': 'admin', href: '#/jobs/' + enc(id) + '/edit', dataset: { testid: 'edit-job' } }, 'Edit and redeploy');
    this.deleteBtn = btn('Delete…', 'delete-job', () => { this.stopConfirm.hidden = true; this.deleteConfirm.ask(); }, 'danger');

    // The restart picker: the job's checkpoints and the savepoints.
    this.pick = h('select', { dataset: { testid: 'restart-from' } });
    this.picker = h('div', { class: 'confirm', hidden: true, dataset: { testid: 'restart-picker' } },
      h('label', null, 'Restart from ', this.pick),
      this.confirmRestart = h('button', { class: 'primary', dataset: { testid: 'confirm-restart' }, onclick: () => this.restart() }, 'Restart'),
      h('button', { dataset: { testid: 'cancel-restart' }, onclick: () => { this.picker.hidden = true; } }, 'Cancel'));

    this.buttons = h('span', { class: 'buttons' }, this.stopBtn, this.resumeBtn, this.restartBtn, this.savepointBtn, this.editBtn, this.deleteBtn, this.note);
    this.bars = h('div', null, this.stopConfirm, this.deleteConfirm, this.picker);
  }

  update(job) {
    const s = job.state;
    this.state = s;
    const running = s === 'running';
    // A starting job (its sinks connecting, its state opening) can be
    // stopped, not yet deleted or restarted: the server counts it running.
    const live = running || s === 'starting';
    this.cluster = !!job.cluster;
    this.stopBtn.hidden = !live;
    this.savepointBtn.hidden = !running || this.cluster;
    this.resumeBtn.hidden = s !== 'stopped' && s !== 'failed';
    this.restartBtn.hidden = live;
    this.deleteBtn.hidden = live;
    if (!live) this.stopConfirm.hidden = true;
    if (live) { this.deleteConfirm.hidden = true; this.picker.hidden = true; }
  }

  async act(btn, what, path, opts) {
    btn.disabled = true;
    this.note.textContent = '';
    this.note.classList.remove('error');
    try {
      const r = await api(path, opts);
      this.note.textContent = what(r);
      return true;
    } catch (e) {
      this.note.textContent = `${btn.textContent.replace('…', '')} failed: ${e.message}`;
      this.note.classList.add('error');
      return false;
    } finally {
      btn.disabled = false;
    }
  }

  stop(withSavepoint) {
    this.act(this.stopBtn, (r) => (r && r.savepoint ? `Stopped at savepoint ${r.savepoint.name}.` : 'Stopped.'),
      '/jobs/' + enc(this.id) + (withSavepoint ? '?savepoint=true' : ''), { method: 'DELETE' });
  }

  async remove() {
    if (this.pausePolls) await this.pausePolls();
    // (the answer may have no body: success is the status)
    if (await this.act(this.deleteBtn, () => 'Deleted.', '/jobs/' + enc(this.id) + '?purge=true', { method: 'DELETE' })) location.hash = '#/jobs';
    else if (this.resumePolls) this.resumePolls();
  }

  async openPicker() {
    this.stopConfirm.hidden = true;
    this.deleteConfirm.hidden = true;
    this.picker.hidden = false;
    if (this.cluster) {
      // Its state is in Kafka: it can only start over.
      this.pick.replaceChildren(h('option', { value: 'from:beginning' }, 'the beginning (its offsets and state are dropped)'));
      this.confirmRestart.disabled = false;
      return;
    }
    this.pick.replaceChildren(h('option', { value: '' }, 'loading…'));
    // (Restart stays disabled while there is nothing to restart from)
    this.confirmRestart.disabled = true;
    let cps = [], sps = [];
    try {
      const [c, s] = await Promise.all([api('/jobs/' + enc(this.id) + '/checkpoints'), api('/savepoints')]);
      cps = (c.checkpoints || []).filter((x) => !x.status || x.status === 'complete').reverse();
      sps = s.savepoints || [];
    } catch (e) {
      this.pick.replaceChildren(h('option', { value: '' }, 'cannot list: ' + e.message));
      return;
    }
    const mine = sps.filter((p) => p.job === this.id);
    const others = sps.filter((p) => p.job !== this.id);
    const spOption = (p) => h('option', { value: 'savepoint:' + p.name }, `${p.name} · ${fmtTime(Date.parse(p.time))}${p.size_bytes != null ? ' · ' + fmtBytes(p.size_bytes) : ''}`);
    const groups = [];
    if (mine.length) groups.push(h('optgroup', { label: 'Savepoints of this job' }, mine.map(spOption)));
    if (cps.length) {
      groups.push(h('optgroup', { label: 'Checkpoints' }, cps.map((c) => h('option', { value: 'checkpoint:' + (c.id ?? c.epoch) },
        `epoch ${c.epoch} · ${fmtTime(Date.parse(c.time))}${c.size_bytes != null ? ' · ' + fmtBytes(c.size_bytes) : ''}`))));
    }
    if (others.length) groups.push(h('optgroup', { label: 'Savepoints of other jobs' }, others.map(spOption)));
    if (!groups.length) groups.push(h('option', { value: '' }, 'no checkpoint or savepoint yet'));
    this.pick.replaceChildren(...groups);
    this.confirmRestart.disabled = !this.pick.value;
  }

  async restart() {
    const v = this.pick.value;
    if (!v) return;
    const i = v.indexOf(':');
    const kind = v.slice(0, i), name = v.slice(i + 1);
    this.picker.hidden = true;
    await this.act(this.restartBtn, () => (kind === 'from' ? `Restarted from the ${name}.` : `Restarted from ${kind} ${name}.`), '/jobs/' + enc(this.id) + '/restart', jsonBody('POST', { [kind]: name }));
  }
}
