// Entry point of the console's web app: the login, then a header with tabs
// over one view per concern (fleet, live, search, config), all fed by one
// MQTT connection and the console's HTTP API.
import { api, setUnauthorizedHandler } from './api.js';
import { createConfigView } from './configView.js';
import { h, replace } from './dom.js';
import { createFleetView } from './fleetView.js';
import { createIntegrityBadge } from './integrityBadge.js';
import { connectLive } from './live.js';
import type { LinkState } from './live.js';
import { createLiveView } from './liveView.js';
import { createLoginView } from './loginView.js';
import { createSearchView } from './searchView.js';
import type { Credentials, Info, SessionInfo } from './types.js';
import type { View } from './view.js';

const root = document.getElementById('app') as HTMLElement;

/** A view's place when the broker does not let this login read what it shows. */
function noAccess(testid: string, sentence: string): View {
  return { element: h('section', { class: 'view', testid }, h('p', { class: 'notice', testid: 'no-access' }, sentence)) };
}

interface Tab {
  id: string;
  label: string;
  make: () => View;
  allowed: boolean;
}

function showLogin(info: Info, note = '', username = ''): void {
  document.title = 'FSO console · log in';
  replace(root, createLoginView((session, creds) => start(info, session, creds), note, username));
}

function start(info: Info, session: SessionInfo, creds: Credentials): void {
  const { access } = session;
  const live = connectLive(info, creds, access);
  const trailSentence = `Your login (${session.username}) may not read the agents' events and diffs: the broker refuses them to this role. The live stream and the search need a login with read access to the trail, such as a viewer.`;
  const tabs: Tab[] = [
    { id: 'live', label: 'Live', allowed: access.trail, make: () => (access.trail ? createLiveView(live) : noAccess('view-live', trailSentence)) },
    { id: 'fleet', label: 'Fleet', allowed: access.fleet, make: () => (access.fleet ? createFleetView(live) : noAccess('view-fleet', `Your login (${session.username}) may not read the agents' status topics.`)) },
    { id: 'search', label: 'Search', allowed: access.trail, make: () => (access.trail ? createSearchView() : noAccess('view-search', trailSentence)) },
    { id: 'config', label: 'Config', allowed: access.configs || access.trail, make: () => createConfigView(info, creds, access, live) },
  ];
  const views = new Map<string, View>();
  const badge = access.trail ? createIntegrityBadge() : undefined;
  const linkDot = h('span', { class: 'link connecting', testid: 'link', title: 'live connection to the broker' }, 'connecting');
  live.on('link', (state: LinkState, reason?: string) => {
    linkDot.className = `link ${state}`;
    linkDot.textContent = state === 'online' ? 'live' : state;
    linkDot.title = reason ? `live connection: ${reason}` : 'live connection to the broker';
  });
  const main = h('main', { class: 'content' });
  const tabButtons = tabs.map((t) => h('button', { type: 'button', class: t.allowed ? 'tab' : 'tab denied', testid: `tab-${t.id}`, title: t.allowed ? '' : 'not readable with this login', onclick: () => { location.hash = t.id; } }, t.label));
  const logout = async (): Promise<void> => {
    live.close();
    badge?.close();
    for (const v of views.values()) v.close?.();
    await api('/api/logout', {}).catch(() => undefined);
    showLogin(info);
  };
  setUnauthorizedHandler(() => {
    live.close();
    badge?.close();
    for (const v of views.values()) v.close?.();
    showLogin(info, 'Your session ended; log in again.', session.username);
  });
  const header = h('header', { class: 'top' },
    h('span', { class: 'brand' }, 'FSO', h('span', { class: 'brand-sub' }, ' console')),
    h('nav', { class: 'tabs' }, ...tabButtons),
    h('span', { class: 'spacer' }),
    badge?.element ?? null,
    linkDot,
    h('span', { class: 'user', testid: 'user' }, session.username),
    h('button', { type: 'button', testid: 'logout', onclick: () => void logout() }, 'Log out'));

  const route = (): void => {
    const wanted = location.hash.slice(1);
    const tab = tabs.find((t) => t.id === wanted) ?? tabs.find((t) => t.allowed) ?? (tabs[0] as Tab);
    let view = views.get(tab.id);
    if (!view) {
      view = tab.make();
      views.set(tab.id, view);
      main.append(view.element);
    }
    for (const [id, v] of views) v.element.hidden = id !== tab.id;
    tabButtons.forEach((b, i) => b.classList.toggle('active', tabs[i] === tab));
    document.title = `FSO console · ${tab.label}`;
    view.shown?.();
  };
  window.onhashchange = route;
  replace(root, header, main);
  route();
}

async function boot(): Promise<void> {
  const info = await api<Info>('/api/info');
  try {
    const session = await api<SessionInfo>('/api/session');
    // The cookie survived a reload, the password did not (it is never stored): MQTT needs it again.
    showLogin(info, 'The live connection needs your password again (it is kept in this page\'s memory only).', session.username);
  } catch {
    showLogin(info);
  }
}

boot().catch((err: unknown) => {
  replace(root, h('p', { class: 'notice' }, `The console could not start: ${String(err)}`));
});
