// The owner's console. Every change goes through the account API with the key pasted at
// sign-in, which lives in `state.key` for this tab only (no storage, no cookie). Text from
// the API reaches the page through textContent and createElement only.
'use strict';

(() => {
  const ACCOUNT_API = '/functions/v1/account-api';
  /** Events kept in the Live view, newest first. */
  const LIVE_KEPT = 200;

  const state = {
    key: null,
    config: null,
    catalogue: null,
    spaces: [],
    space: null,
    keys: [],
    tab: 'spaces',
  };

  const $ = (id) => document.getElementById(id);

  /** An element with attributes (`text` for its text, `on…` for listeners) and children. */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null && child !== false) node.append(child);
    }
    return node;
  }

  function button(label, onclick, kind) {
    return el('button', { type: 'button', class: kind, onclick }, label);
  }

  /** A definition list of [term, description] pairs. */
  function facts(pairs) {
    return el('dl', { class: 'facts' }, pairs.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]));
  }

  function code(text) {
    return el('code', {}, text);
  }

  function when(iso) {
    if (!iso) return 'never';
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  // ---- Status line -------------------------------------------------------------------

  function say(message, error = false) {
    const status = $('status');
    status.textContent = message;
    status.classList.toggle('error', error);
  }

  function fail(error) {
    let message = error && error.message ? error.message : String(error);
    if (error && error.fields) {
      const details = Object.entries(error.fields).map(([field, problems]) => `${field}: ${[].concat(problems).join(' ')}`);
      if (details.length) message += ` (${details.join('; ')})`;
    }
    say(message, true);
  }

  // ---- The account API ---------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, message, fields) {
      super(message);
      this.status = status;
      this.fields = fields;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${state.key}` };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(ACCOUNT_API + path, init);
    } catch {
      throw new ApiFailure(0, 'The API could not be reached.');
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      if (response.status === 401) signOut();
      throw new ApiFailure(response.status, error.message || `The API answered ${response.status}.`, error.fields);
    }
    return data;
  }

  /** Every item of a paginated list. */
  async function listAll(path, query = '') {
    const items = [];
    let cursor = null;
    do {
      const page = await api('GET', `${path}?limit=200${query ? `&${query}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }

  const spacePath = (suffix = '') => `/spaces/${encodeURIComponent(state.space)}${suffix}`;

  /** Runs a form's action with its submit button disabled, reporting any failure. */
  async function submitting(event, action) {
    event.preventDefault();
    const submit = event.target.querySelector('button[type="submit"]');
    if (submit) submit.disabled = true;
    try {
      await action();
    } catch (error) {
      fail(error);
    } finally {
      if (submit && submit.isConnected) submit.disabled = false;
    }
  }

  /** A button that asks once more before `action`. */
  function confirmButton(label, question, action) {
    const holder = el('div', { class: 'actions' });
    const ask = () => {
      const yes = button(`Yes, ${label.toLowerCase()}`, async () => {
        yes.disabled = true;
        try {
          await action();
        } catch (error) {
          fail(error);
          reset();
        }
      }, 'danger');
      holder.replaceChildren(el('p', { class: 'confirm-text' }, question), yes, button('Cancel', reset, 'secondary'));
      yes.focus();
    };
    const reset = () => {
      const first = button(label, ask, 'danger');
      holder.replaceChildren(first);
      return first;
    };
    reset();
    return holder;
  }

  // ---- Sign-in and navigation --------------------------------------------------------

  async function signIn(event) {
    await submitting(event, async () => {
      const input = $('account-key');
      const key = input.value.trim();
      input.value = '';
      if (!key.startsWith('wka_')) {
        throw new Error('An account key starts with wka_live_ (a space key, wks_live_…, cannot manage Spaces).');
      }
      state.key = key;
      try {
        state.catalogue = await api('GET', '/scopes');
        await loadSpaces();
      } catch (error) {
        state.key = null;
        throw error;
      }
      buildScopeGrid();
      $('sign-in').hidden = true;
      $('session').hidden = false;
      $('tabs').hidden = false;
      say('Signed in.');
      await show(state.space ? 'keys' : 'spaces');
    });
  }

  function signOut() {
    stopLive();
    stopApprovalWatch();
    state.key = null;
    state.spaces = [];
    state.space = null;
    state.keys = [];
    forgetEvents();
    for (const id of ['spaces-list', 'keys-list', 'secrets-list', 'connections-list', 'approvals-pending', 'approvals-history']) {
      $(id).replaceChildren();
    }
    approvals.list = [];
    hideSecretPanels();
    document.querySelectorAll('.tab').forEach((tab) => { tab.hidden = true; });
    $('tabs').hidden = true;
    $('session').hidden = true;
    $('sign-in').hidden = false;
    say('Signed out: the key is forgotten.');
    $('account-key').focus();
  }

  async function show(tab) {
    if (tab !== state.tab) say('');
    state.tab = tab;
    document.querySelectorAll('.tab').forEach((section) => { section.hidden = section.id !== `tab-${tab}`; });
    document.querySelectorAll('#tabs button').forEach((item) => {
      if (item.dataset.tab === tab) item.setAttribute('aria-current', 'page');
      else item.removeAttribute('aria-current');
    });
    if (tab !== 'live') stopLive();
    if (tab !== 'approvals') stopApprovalWatch();
    try {
      if (tab === 'spaces') await loadSpaces();
      else if (!state.space) say('Create a Space first.', true);
      else if (tab === 'keys') await loadKeys();
      else if (tab === 'secrets') await loadSecrets();
      else if (tab === 'connections') await loadConnections();
      else if (tab === 'approvals') {
        await loadKeys();
        await reloadApprovals();
        startApprovalWatch();
      }
      else if (tab === 'live') {
        await loadKeys();
        startLive();
      }
    } catch (error) {
      fail(error);
    }
  }

  async function choose(space) {
    state.space = space;
    state.keys = [];
    forgetEvents();
    approvals.list = [];
    hideSecretPanels();
    renderSpaceChoice();
    if (state.tab !== 'spaces') await show(state.tab);
  }

  // ---- Spaces ------------------------------------------------------------------------

  async function loadSpaces() {
    state.spaces = await listAll('/spaces');
    const active = state.spaces.filter((space) => space.status !== 'deleting');
    if (!active.some((space) => space.id === state.space)) state.space = active.length ? active[0].id : null;
    renderSpaces();
    renderSpaceChoice();
  }

  function renderSpaceChoice() {
    const select = $('space-select');
    const choices = state.spaces.filter((space) => space.status !== 'deleting');
    select.replaceChildren(...choices.map((space) => el('option', { value: space.id, selected: space.id === state.space }, space.name)));
    select.disabled = choices.length === 0;
    const current = state.spaces.find((space) => space.id === state.space);
    document.querySelectorAll('.space-name').forEach((node) => { node.textContent = current ? current.name : 'no Space'; });
  }

  function renderSpaces() {
    const list = $('spaces-list');
    list.replaceChildren();
    if (!state.spaces.length) list.append(el('li', { class: 'card empty' }, 'No Space yet: create one below.'));
    for (const space of state.spaces) list.append(spaceCard(space));
  }

  function spaceCard(space) {
    const card = el('li', { class: 'card', 'data-space': space.id },
      el('h3', {}, space.name),
      facts([['Id', code(space.id)], ['Status', space.status], ['Created', when(space.created_at)]]));
    if (space.status === 'deleting') return card;
    card.append(el('div', { class: 'actions' },
      button('Open', async () => { await choose(space.id); await show('keys'); }),
      button('Rename', () => renameForm(card, space), 'secondary'),
      button('Delete', () => deleteForm(card, space), 'danger')));
    return card;
  }

  /** Opens a small form inside `card`, replacing any other one there. */
  function inlineForm(card, build) {
    const open = card.querySelector('.inline');
    if (open) open.remove();
    const form = el('form', { class: 'inline' });
    build(form, () => form.remove());
    card.append(form);
    const first = form.querySelector('input');
    if (first) first.focus();
  }

  function renameForm(card, space) {
    inlineForm(card, (form, close) => {
      const id = `rename-${space.id}`;
      const input = el('input', { id, value: space.name, required: true, maxlength: 200, autocomplete: 'off' });
      form.append(el('label', { for: id }, `New name for ${space.name}`), input,
        el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Save'), button('Cancel', close, 'secondary')));
      form.addEventListener('submit', (event) => submitting(event, async () => {
        const name = input.value.trim();
        await api('PUT', `/spaces/${encodeURIComponent(space.id)}`, { name });
        say(`Renamed to ${name}.`);
        await loadSpaces();
      }));
    });
  }

  function deleteForm(card, space) {
    inlineForm(card, (form, close) => {
      const id = `delete-${space.id}`;
      const input = el('input', { id, autocomplete: 'off', spellcheck: 'false' });
      const confirm = el('button', { type: 'submit', class: 'danger', disabled: true }, 'Delete this Space');
      input.addEventListener('input', () => { confirm.disabled = input.value !== space.name; });
      form.append(
        el('p', { class: 'hint' }, 'Its keys stop working at once, then all its data, files and secrets are removed.'),
        el('label', { for: id }, `Type “${space.name}” to delete it`), input,
        el('div', { class: 'actions' }, confirm, button('Cancel', close, 'secondary')));
      form.addEventListener('submit', (event) => submitting(event, async () => {
        if (input.value !== space.name) throw new Error('Type the Space’s name exactly to delete it.');
        await api('DELETE', `/spaces/${encodeURIComponent(space.id)}`);
        say(`Deleted ${space.name}: its data is being removed.`);
        await loadSpaces();
      }));
    });
  }

  async function createSpace(event) {
    await submitting(event, async () => {
      const input = $('space-name');
      const created = await api('POST', '/spaces', { name: input.value.trim() });
      input.value = '';
      say(`Created ${created.name}.`);
      state.space = created.id;
      await loadSpaces();
    });
  }

  // ---- Keys --------------------------------------------------------------------------

  function buildScopeGrid() {
    const { actions, domains, toolsets } = state.catalogue;
    const head = el('tr', {}, el('th', { scope: 'col' }, 'Domain'),
      actions.map((action) => el('th', { scope: 'col', class: action.live ? 'live' : null, title: action.about },
        action.name, action.live ? el('span', { class: 'badge' }, 'live') : null)));
    const rows = domains.map((domain) => el('tr', {},
      el('th', { scope: 'row' }, el('span', { class: 'domain' }, domain.name), el('span', { class: 'about' }, domain.about)),
      actions.map((action) => {
        const cell = el('td', { class: action.live ? 'live' : null });
        if (domain.actions.includes(action.name)) {
          const scope = `${domain.name}:${action.name}`;
          const id = `scope-${domain.name}-${action.name}`;
          cell.append(el('input', { type: 'checkbox', id, name: 'scope', value: scope, 'data-live': action.live }),
            el('label', { for: id, class: 'visually-hidden' }, scope + (action.live ? ' (live action)' : '')));
        } else {
          cell.append(el('span', { class: 'none', 'aria-hidden': 'true' }, '—'));
        }
        return cell;
      })));
    $('scope-grid').replaceChildren(el('thead', {}, head), el('tbody', {}, rows));
    $('key-toolsets').replaceChildren(...toolsets.map((name) => el('option', { value: name }, name)));
    renderApprovalChoices();
    const legend = $('key-caps').querySelector('legend');
    $('key-caps').replaceChildren(legend, ...state.catalogue.caps.map((cap) => {
      const input = el('input', { type: 'number', id: `key-cap-${cap.name}`, min: 1, max: 1000000, step: 1, inputmode: 'numeric', 'data-cap': cap.name });
      return el('div', {}, el('label', { for: input.id }, `${cap.name} (needs ${cap.domain}:run)`), input);
    }));
  }

  /** The live scopes ticked on the grid, each offered as needing approval: the API takes
   * only scopes of the key itself. */
  function renderApprovalChoices() {
    const holder = $('key-approval-scopes');
    const kept = new Set([...holder.querySelectorAll('input:checked')].map((box) => box.value));
    const live = [...document.querySelectorAll('#scope-grid input[data-live]:checked')].map((box) => box.value);
    holder.replaceChildren(...(live.length
      ? live.map((scope) => {
        const box = el('input', { type: 'checkbox', id: `approval-${scope.replace(':', '-')}`, value: scope });
        box.checked = kept.has(scope);
        return el('div', { class: 'check' }, box, el('label', { for: box.id }, scope));
      })
      : [el('p', { class: 'hint' }, 'No run scope ticked: nothing to approve.')]));
  }

  async function loadKeys() {
    state.keys = await listAll(spacePath('/keys'));
    renderKeys();
  }

  function renderKeys() {
    const list = $('keys-list');
    list.replaceChildren();
    if (!state.keys.length) list.append(el('li', { class: 'card empty' }, 'No key yet.'));
    for (const key of state.keys) {
      const pairs = [
        ['Prefix', code(key.prefix)],
        ['Scopes', key.scopes.join(' ')],
        ['Expires', key.expires_at ? when(key.expires_at) : 'never'],
        ['Last used', when(key.last_used_at)],
        ['Requests today', String(key.requests_today)],
        ['This month', String(key.requests_this_month)],
        ['Rate limit', key.rate_limit_per_minute ? `${key.rate_limit_per_minute} per minute` : 'default'],
      ];
      if (key.toolsets) pairs.push(['Toolsets', key.toolsets.join(' ')]);
      if (key.read_only) pairs.push(['Read-only', 'yes']);
      if (key.approval_required && key.approval_required.length) pairs.push(['Approval required', key.approval_required.join(' ')]);
      const caps = Object.entries(key.limits || {});
      if (caps.length) pairs.push(['Caps', caps.map(([name, limit]) => `${name} ${limit.per_day}/day`).join(', ')]);
      list.append(el('li', { class: 'card', 'data-key': key.id }, el('h3', {}, key.name), facts(pairs), usageDetails(key),
        confirmButton('Revoke', `Revoke ${key.name}? It stops working on its next request.`, async () => {
          await api('DELETE', spacePath(`/keys/${encodeURIComponent(key.id)}`));
          say(`Revoked ${key.name}.`);
          await loadKeys();
        })));
    }
    const filter = $('live-key');
    const chosen = filter.value;
    filter.replaceChildren(el('option', { value: '' }, 'Any key'),
      el('option', { value: OWNER, selected: chosen === OWNER }, 'The owner (account key)'),
      ...state.keys.map((key) => el('option', { value: key.id, selected: key.id === chosen }, `${key.name} (${key.prefix})`)));
  }

  /** A key's requests per UTC day over the kept 90 days, read when first opened. */
  function usageDetails(key) {
    const days = el('ol', { class: 'days' });
    const details = el('details', { class: 'usage' }, el('summary', {}, 'Requests per day'), days);
    details.addEventListener('toggle', async () => {
      if (!details.open || days.dataset.loaded) return;
      try {
        const usage = await api('GET', spacePath(`/keys/${encodeURIComponent(key.id)}/usage`));
        days.dataset.loaded = 'yes';
        days.replaceChildren(...(usage.days.length
          ? usage.days.map((day) => el('li', { 'data-date': day.date }, `${day.date}: ${day.requests}`))
          : [el('li', {}, 'No request in the last 90 days.')]));
      } catch (error) {
        fail(error);
      }
    });
    return details;
  }

  function expiry() {
    const choice = $('key-expiry').value;
    if (!choice) return null;
    if (choice === 'date') {
      const day = $('key-expiry-date').value;
      if (!day) throw new Error('Pick the expiry date.');
      return `${day}T23:59:59Z`;
    }
    return new Date(Date.now() + Number(choice) * 86400000).toISOString();
  }

  async function createKey(event) {
    await submitting(event, async () => {
      const scopes = [...document.querySelectorAll('#scope-grid input:checked')].map((box) => box.value);
      if (!scopes.length) throw new Error('Tick at least one scope.');
      const body = { name: $('key-name').value.trim(), scopes, expires_at: expiry(), read_only: $('key-read-only').checked };
      const toolsets = [...$('key-toolsets').selectedOptions].map((option) => option.value);
      if (toolsets.length) body.toolsets = toolsets;
      const rate = $('key-rate').value.trim();
      if (rate) body.rate_limit_per_minute = Number(rate);
      const limits = {};
      for (const input of $('key-caps').querySelectorAll('input[data-cap]')) {
        if (input.value.trim()) limits[input.dataset.cap] = { per_day: Number(input.value) };
      }
      if (Object.keys(limits).length) body.limits = limits;
      const approval = [...$('key-approval-scopes').querySelectorAll('input:checked')].map((box) => box.value);
      if (approval.length) body.approval_required = approval;
      const minted = await api('POST', spacePath('/keys'), body);
      event.target.reset();
      renderApprovalChoices();
      $('key-expiry-date-row').hidden = true;
      $('key-expiry-date').required = false;
      showMinted(minted.token);
      say(`Minted ${minted.name}. Copy its token now: it is not shown again.`);
      await loadKeys();
    });
  }

  function showMinted(token) {
    const { claude_code: claude, mcp_json: json, token_slot: slot } = state.config.mcp;
    $('minted-token').value = token;
    $('minted-claude').value = claude.split(slot).join(token);
    $('minted-mcp-json').value = json.split(slot).join(token);
    const panel = $('minted');
    panel.hidden = false;
    panel.focus();
  }

  function hideSecretPanels() {
    for (const id of ['minted-token', 'minted-claude', 'minted-mcp-json', 'connection-secret-value']) $(id).value = '';
    $('minted').hidden = true;
    $('connection-secret').hidden = true;
  }

  async function copy(source, trigger) {
    const field = $(source);
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch {
      field.focus();
      field.select();
    }
    trigger.textContent = copied ? 'Copied' : 'Selected: press Ctrl+C';
    setTimeout(() => { trigger.textContent = 'Copy'; }, 2500);
  }

  // ---- Secrets -----------------------------------------------------------------------

  async function loadSecrets() {
    const secrets = await listAll(spacePath('/secrets'));
    const list = $('secrets-list');
    list.replaceChildren();
    if (!secrets.length) list.append(el('li', { class: 'card empty' }, 'No secret yet.'));
    for (const secret of secrets) {
      list.append(el('li', { class: 'card', 'data-secret': secret.name }, el('h3', {}, code(secret.name)),
        facts([['Set', when(secret.created_at)], ['Changed', when(secret.updated_at)]]),
        confirmButton('Delete', `Delete ${secret.name} and its value?`, async () => {
          await api('DELETE', spacePath(`/secrets/${encodeURIComponent(secret.name)}`));
          say(`Deleted ${secret.name}.`);
          await loadSecrets();
        })));
    }
  }

  async function setSecret(event) {
    await submitting(event, async () => {
      const name = $('secret-name').value.trim();
      const value = $('secret-value');
      try {
        await api('PUT', spacePath(`/secrets/${encodeURIComponent(name)}`), { value: value.value });
      } finally {
        value.value = '';
      }
      $('secret-name').value = '';
      say(`Set ${name}.`);
      await loadSecrets();
    });
  }

  // ---- Connections -------------------------------------------------------------------

  function buildConnectionForm() {
    const { kinds, networks, ad_networks: adNetworks, channels, capabilities } = state.config.connections;
    const options = (names) => names.map((name) => el('option', { value: name }, name));
    $('connection-kind').replaceChildren(...options(kinds));
    $('connection-network').replaceChildren(...options(networks));
    $('connection-ad-network').replaceChildren(...options(adNetworks));
    $('connection-channel').replaceChildren(...options(channels));
    const legend = $('connection-capabilities').querySelector('legend');
    $('connection-capabilities').replaceChildren(legend, ...capabilities.map((name) => {
      const box = el('input', { type: 'checkbox', id: `connection-capability-${name}`, value: name });
      box.defaultChecked = true;
      box.checked = true;
      return el('div', { class: 'check' }, box, el('label', { for: box.id }, name));
    }));
    showKindFields();
  }

  function showKindFields() {
    const kind = $('connection-kind').value;
    $('connection-social').hidden = kind !== 'social';
    $('connection-messaging').hidden = kind !== 'messaging';
    $('connection-address').required = kind === 'messaging';
    $('connection-phone').hidden = kind !== 'phone';
    $('connection-number').required = kind === 'phone';
    $('connection-mail').hidden = kind !== 'mail';
    $('connection-sender').required = kind === 'mail';
    $('connection-ads').hidden = kind !== 'ads';
  }

  async function loadConnections() {
    const listed = await api('GET', spacePath('/connections'));
    const list = $('connections-list');
    list.replaceChildren();
    if (!listed.data.length) list.append(el('li', { class: 'card empty' }, 'Nothing connected yet.'));
    for (const connection of listed.data) {
      const pairs = [['Kind', connection.kind]];
      if (connection.network) pairs.push(['Network', connection.network]);
      if (connection.channel) pairs.push(['Channel', connection.channel]);
      if (connection.handle) pairs.push(['Handle', connection.handle]);
      if (connection.address) pairs.push(['Address', connection.address]);
      if (connection.number) pairs.push(['Number', connection.number]);
      if (connection.capabilities) pairs.push(['Capabilities', connection.capabilities.join(', ')]);
      if (connection.kind === 'mail') pairs.push(['Verified', connection.verified ? 'yes' : `no (${connection.verification_status})`]);
      pairs.push(['Provider', connection.provider], ['Active', connection.active ? 'yes' : 'no'], ['Id', code(connection.id)]);
      const card = el('li', { class: 'card', 'data-connection': connection.id }, el('h3', {}, connection.name), facts(pairs));
      if (connection.kind === 'messaging' && connection.provider === 'sandbox') {
        card.append(button('Play a customer', () => inboundForm(card, connection), 'secondary'));
      }
      list.append(card);
      const path = spacePath(`/connections/${encodeURIComponent(connection.id)}`);
      card.append(button(connection.active ? 'Pause' : 'Resume', async (event) => {
        const trigger = event.currentTarget;
        trigger.disabled = true;
        try {
          await api('PATCH', path, { active: !connection.active });
          await loadConnections();
          say(connection.active
            ? `Paused ${connection.name}: nothing new goes out through it until you resume it.`
            : `Resumed ${connection.name}.`);
        } catch (error) {
          fail(error);
          trigger.disabled = false;
        }
      }, 'secondary'));
      card.append(confirmButton('Disconnect', `Disconnect ${connection.name}? Work queued through it fails instead of going out.`, async () => {
          await api('DELETE', path);
          say(`Disconnected ${connection.name}.`);
          await loadConnections();
        }));
    }
  }

  /** The sandbox lets the owner send a message to a channel as a customer would: it lands
   * in the inbox through the same path as the provider's signed callback. */
  function inboundForm(card, connection) {
    inlineForm(card, (form, close) => {
      const from = el('input', { id: `inbound-from-${connection.id}`, required: true, maxlength: 254, autocomplete: 'off' });
      const text = el('textarea', { id: `inbound-text-${connection.id}`, rows: 2, maxlength: 4096 });
      form.append(
        el('label', { for: from.id }, connection.channel === 'email' ? 'From (an email address)' : 'From (a number like +12015550123)'), from,
        el('label', { for: text.id }, 'Message'), text,
        el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Send to the inbox'), button('Cancel', close, 'secondary')));
      form.addEventListener('submit', (event) => submitting(event, async () => {
        const received = await api('POST', spacePath(`/connections/${encodeURIComponent(connection.id)}/inbound`),
          { from: from.value.trim(), text: text.value });
        say(`Received in thread ${received.thread.id}.`);
        close();
      }));
    });
  }

  async function connect(event) {
    await submitting(event, async () => {
      const kind = $('connection-kind').value;
      const body = { kind, name: $('connection-name').value.trim(), provider: 'sandbox' };
      if (kind === 'social') {
        body.network = $('connection-network').value;
        const handle = $('connection-handle').value.trim();
        if (handle) body.handle = handle;
      } else if (kind === 'messaging') {
        body.channel = $('connection-channel').value;
        body.address = $('connection-address').value.trim();
      } else if (kind === 'phone') {
        body.number = $('connection-number').value.trim();
        body.capabilities = [...$('connection-capabilities').querySelectorAll('input:checked')].map((box) => box.value);
      } else if (kind === 'mail') {
        body.address = $('connection-sender').value.trim();
      } else if (kind === 'ads') {
        body.network = $('connection-ad-network').value;
      }
      const created = await api('POST', spacePath('/connections'), body);
      event.target.reset();
      showKindFields();
      say(`Connected ${created.name}.`);
      if (created.signing_secret) {
        $('connection-secret-value').value = created.signing_secret;
        $('connection-secret').hidden = false;
        $('connection-secret').focus();
      }
      await loadConnections();
    });
  }

  // ---- Approvals ---------------------------------------------------------------------

  const approvals = { controller: null, lastId: null, list: [], loading: null, again: false };

  /** How many of the latest approvals the history is drawn from, newest first. */
  const APPROVAL_HISTORY = 50;

  /** What each status means to the owner. */
  const APPROVAL_STATUS = {
    pending: 'Pending: waits for you',
    approved: 'Approved: about to run',
    performed: 'Performed: approved, and it ran',
    failed: 'Failed: approved, but the call failed',
    rejected: 'Rejected: never runs',
  };

  /** Reloads the list; a reload asked for while one runs (events in a burst) runs once after it. */
  function reloadApprovals() {
    if (approvals.loading) {
      approvals.again = true;
      return approvals.loading;
    }
    approvals.loading = (async () => {
      try {
        do {
          approvals.again = false;
          // Every pending one, and the latest page of the history (filtered here, at once).
          const [pending, history] = await Promise.all([
            listAll(spacePath('/approvals'), 'status=pending'),
            api('GET', `${spacePath('/approvals')}?order=desc&limit=${APPROVAL_HISTORY}`),
          ]);
          approvals.list = [...pending, ...history.data.filter((approval) => approval.status !== 'pending')];
          renderApprovals();
        } while (approvals.again);
      } finally {
        approvals.loading = null;
      }
    })();
    return approvals.loading;
  }

  /** A section's line saying how its stream goes. */
  function streamState(id, text, error = false) {
    const node = $(id);
    node.textContent = text;
    node.classList.toggle('error', error);
  }

  const approvalState = (text, error = false) => streamState('approvals-state', text, error);

  function stopApprovalWatch() {
    if (approvals.controller) approvals.controller.abort();
    approvals.controller = null;
  }

  /** Keeps the lists current from the Space's `approval.*` events while the section is open. */
  function startApprovalWatch() {
    stopApprovalWatch();
    if (!state.space) return;
    const controller = new AbortController();
    approvals.controller = controller;
    approvals.lastId = null;
    const refresh = () => { if (approvals.controller === controller) reloadApprovals().catch(fail); };
    watch(controller, approvals, {
      types: 'approval.*',
      report: (phase, message) => {
        if (phase === 'connecting') approvalState('Connecting to the Space’s events…');
        else if (phase === 'reconnecting') approvalState('Reconnecting…');
        else if (phase === 'failed') approvalState(`${message} Use Refresh to see new approvals.`, true);
        else {
          approvalState('Watching: new requests and decisions show here as they happen.');
          // A fresh stream starts now: read again what changed since the list was read.
          if (message === 'fresh') refresh();
        }
      },
      onEvent: refresh,
    });
  }

  function keyName(id) {
    const key = state.keys.find((item) => item.id === id);
    return key ? `${key.name} (${key.prefix})` : id;
  }

  function json(value) {
    return el('pre', {}, JSON.stringify(value, null, 2));
  }

  function approvalCard(approval) {
    const pairs = [
      ['Status', APPROVAL_STATUS[approval.status] || approval.status],
      ['Call', code(`${approval.method} ${approval.path}`)],
      ['Key', keyName(approval.key_id)],
      ['Scope', approval.scope],
      ['Asked', when(approval.created_at)],
    ];
    if (approval.decided_at) pairs.push(['Decided', when(approval.decided_at)]);
    if (approval.reason) pairs.push(['Reason', approval.reason]);
    if (approval.result) pairs.push(['Answered', String(approval.result.status)]);
    pairs.push(['Id', code(approval.id)]);
    const pending = approval.status === 'pending';
    const card = el('li', { class: 'card', 'data-approval': approval.id, 'data-status': approval.status },
      el('h3', {}, approval.operation), facts(pairs),
      el('details', { class: 'usage', open: pending }, el('summary', {}, 'What the key sent'), json(approval.request)));
    if (approval.result) {
      card.append(el('details', { class: 'usage' }, el('summary', {}, 'What the call answered'), json(approval.result.body)));
    }
    if (pending) {
      card.append(el('div', { class: 'actions' },
        button('Approve', (event) => decideApproval(event.currentTarget, approval, 'approve')),
        button('Reject', () => rejectForm(card, approval), 'danger')));
    }
    return card;
  }

  function renderApprovals() {
    const pending = approvals.list.filter((approval) => approval.status === 'pending');
    const chosen = $('approvals-status').value;
    // Newest decision first; the waiting ones stay in the order they came.
    const decided = approvals.list
      .filter((approval) => approval.status !== 'pending' && (!chosen || approval.status === chosen))
      .sort((a, b) => (b.decided_at || b.created_at).localeCompare(a.decided_at || a.created_at));
    // A reject form being filled in survives a refresh that leaves its approval pending.
    const open = $('approvals-pending').querySelector('li .inline');
    $('approvals-pending').replaceChildren(...(pending.length
      ? pending.map((approval) => {
        const card = approvalCard(approval);
        if (open && open.closest('li').dataset.approval === approval.id) card.append(open);
        return card;
      })
      : [el('li', { class: 'card empty' }, 'Nothing waits for you.')]));
    $('approvals-history').replaceChildren(...(decided.length
      ? decided.map(approvalCard)
      : [el('li', { class: 'card empty' }, chosen ? `No ${chosen} approval.` : 'No decision yet.')]));
  }

  async function decideApproval(trigger, approval, verb, body) {
    trigger.disabled = true;
    try {
      const decided = await api('POST', spacePath(`/approvals/${encodeURIComponent(approval.id)}/${verb}`), body);
      say(verb === 'approve'
        ? `Approved ${decided.operation}: it runs once, as ${keyName(decided.key_id)}.`
        : `Rejected ${decided.operation}: it will not run.`);
    } catch (error) {
      fail(error);
    } finally {
      if (trigger.isConnected) trigger.disabled = false;
    }
    await reloadApprovals().catch(fail);
  }

  function rejectForm(card, approval) {
    inlineForm(card, (form, close) => {
      const reason = el('textarea', { id: `reject-reason-${approval.id}`, rows: 2, maxlength: 500 });
      form.append(el('label', { for: reason.id }, 'Reason (optional, kept with the approval)'), reason,
        el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'danger' }, 'Reject this call'),
          button('Cancel', close, 'secondary')));
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        const text = reason.value.trim();
        decideApproval(event.submitter || form.querySelector('button[type="submit"]'), approval, 'reject',
          text ? { reason: text } : undefined);
      });
    });
    card.querySelector('textarea').focus();
  }

  // ---- Live --------------------------------------------------------------------------

  const live = { controller: null, lastId: null, events: [] };

  /** Drops what Live showed (another Space, or signed out) and where it was in the stream. */
  function forgetEvents() {
    live.events = [];
    live.lastId = null;
    $('live-events').replaceChildren();
  }

  const liveState = (text, error = false) => streamState('live-state', text, error);

  function stopLive() {
    if (live.controller) live.controller.abort();
    live.controller = null;
    $('live-toggle').textContent = 'Resume';
    $('live-toggle').setAttribute('aria-pressed', 'false');
  }

  const pause = (ms, signal) => new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });

  /** Follows the Space's realtime stream with fetch (the key goes in a header, never the
   * URL) until `controller` aborts or the stream refuses for good, resuming after a drop
   * from `cursor.lastId`. `types` narrows the stream (`approval.*`); `report(phase, message)`
   * says how it goes: connecting, watching, reconnecting or failed. */
  async function watch(controller, cursor, { types, report, onEvent }) {
    let url = `${state.config.realtime_url}?space=${encodeURIComponent(state.space)}`;
    if (types) url += `&types=${encodeURIComponent(types)}`;
    while (!controller.signal.aborted) {
      report('connecting');
      try {
        const headers = { Authorization: `Bearer ${state.key}`, Accept: 'text/event-stream' };
        if (cursor.lastId) headers['Last-Event-ID'] = cursor.lastId;
        const response = await fetch(url, { headers, signal: controller.signal, cache: 'no-store' });
        if (!response.ok) {
          const data = await response.json().catch(() => null);
          const message = data && data.error ? data.error.message : `The stream answered ${response.status}.`;
          report('failed', message);
          if (response.status < 500 && response.status !== 429) return;
        } else {
          report('watching', cursor.lastId ? 'resumed' : 'fresh');
          await follow(response.body, (id, event) => {
            if (id) cursor.lastId = id;
            onEvent(event);
          });
        }
      } catch {
        if (controller.signal.aborted) return;
      }
      if (!controller.signal.aborted) report('reconnecting');
      await pause(1000, controller.signal);
    }
  }

  async function startLive() {
    stopLive();
    if (!state.space) return;
    const controller = new AbortController();
    live.controller = controller;
    $('live-toggle').textContent = 'Pause';
    $('live-toggle').setAttribute('aria-pressed', 'true');
    await watch(controller, live, {
      report: (phase, message) => {
        if (phase === 'connecting') liveState('Connecting…');
        else if (phase === 'watching') liveState('Watching: events appear here as they happen.');
        else if (phase === 'reconnecting') liveState('Reconnecting…');
        else liveState(message, true);
      },
      onEvent: (event) => {
        live.events.unshift(event);
        live.events.length = Math.min(live.events.length, LIVE_KEPT);
        renderEvents();
      },
    });
    // Refused for good (not aborted): show the toggle as paused.
    if (live.controller === controller) stopLive();
  }

  async function follow(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const parsed = parse(block);
        if (parsed) onEvent(parsed.id, parsed.event);
        end = buffer.indexOf('\n\n');
      }
    }
  }

  /** One Server-Sent Events block: comments (keep-alives) and empty blocks are skipped. */
  function parse(block) {
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') id = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return null;
    try {
      return { id, event: JSON.parse(data.join('\n')) };
    } catch {
      return null;
    }
  }

  /** Who wrote an event, by the kind its actor records. */
  const ACTORS = { owner: 'the owner', system: 'the platform' };
  /** The key filter's choice for the owner's own changes. */
  const OWNER = '@owner';

  function byKey(actor, chosen) {
    if (!chosen) return true;
    if (chosen === OWNER) return actor.kind === 'owner';
    return actor.kind === 'key' && actor.key_id === chosen;
  }

  /** `contact.*` matches every contact event; a plain word matches a type containing it. */
  function typeMatcher(text) {
    const pattern = text.trim();
    if (!pattern) return () => true;
    if (!pattern.includes('*')) return (type) => type.includes(pattern);
    const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    const regex = new RegExp(`^${escaped}$`);
    return (type) => regex.test(type);
  }

  function renderEvents() {
    const matches = typeMatcher($('live-type').value);
    const key = $('live-key').value;
    const names = new Map(state.keys.map((item) => [item.id, item.name]));
    const shown = live.events.filter((event) => matches(event.type || '') && byKey(event.actor || {}, key));
    $('live-events').replaceChildren(...shown.map((event) => {
      const actor = event.actor || {};
      const by = actor.kind === 'key' ? (names.get(actor.key_id) || actor.key_id) : ACTORS[actor.kind] || actor.kind;
      const resource = event.resource ? `${event.resource.type} ${event.resource.id}` : '';
      return el('li', { class: 'event', 'data-type': event.type, 'data-id': event.id },
        el('div', { class: 'type' }, event.type),
        el('div', { class: 'meta' }, `${when(event.created_at)} · by ${by}${resource ? ` · ${resource}` : ''}`),
        el('details', {}, el('summary', {}, 'Event'), el('pre', {}, JSON.stringify(event, null, 2))));
    }));
  }

  // ---- Wiring ------------------------------------------------------------------------

  async function start() {
    try {
      const response = await fetch('/console/config.json', { cache: 'no-store' });
      state.config = await response.json();
    } catch {
      say('The console could not load its settings; reload the page.', true);
      return;
    }
    buildConnectionForm();
    $('sign-in-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', signOut);
    $('tabs').addEventListener('click', (event) => {
      const tab = event.target.closest('button[data-tab]');
      if (tab) show(tab.dataset.tab);
    });
    $('space-select').addEventListener('change', (event) => choose(event.target.value));
    $('space-create').addEventListener('submit', createSpace);
    $('key-create').addEventListener('submit', createKey);
    $('key-expiry').addEventListener('change', (event) => {
      $('key-expiry-date-row').hidden = event.target.value !== 'date';
      $('key-expiry-date').required = event.target.value === 'date';
    });
    $('keys-refresh').addEventListener('click', () => loadKeys().catch(fail));
    $('minted-done').addEventListener('click', () => { hideSecretPanels(); $('key-name').focus(); });
    $('connection-secret-done').addEventListener('click', () => { hideSecretPanels(); $('connection-name').focus(); });
    document.querySelectorAll('button[data-copy]').forEach((trigger) => {
      trigger.addEventListener('click', () => copy(trigger.dataset.copy, trigger));
    });
    $('secret-set').addEventListener('submit', setSecret);
    $('connection-kind').addEventListener('change', showKindFields);
    $('connection-create').addEventListener('submit', connect);
    $('approvals-refresh').addEventListener('click', () => reloadApprovals().catch(fail));
    $('approvals-status').addEventListener('change', renderApprovals);
    $('scope-grid').addEventListener('change', renderApprovalChoices);
    $('live-toggle').addEventListener('click', () => (live.controller ? stopLive() : startLive()));
    $('live-type').addEventListener('input', renderEvents);
    $('live-key').addEventListener('change', renderEvents);
    $('live-clear').addEventListener('click', () => { live.events = []; renderEvents(); });
    $('account-key').focus();
  }

  start();
})();
