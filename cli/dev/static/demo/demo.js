// The demo pages, wired with the tracking module exactly as a site's frontend would be.
import {
  configure,
  getClickSourceFromTab,
  getViewSourceFromReferrer,
  trackProjectClick,
  trackProjectView,
} from '/static/tracking.js';

const params = new URLSearchParams(window.location.search);
const api = params.get('api'); // ?api=http://other-origin:port tries the service cross-origin
const TABS = ['for-you', 'trending', 'new', 'news'];

configure({
  ...(api ? { baseUrl: api } : {}),
  // the demo feed lives at /demo/ rather than the default / or /explore
  viewSourcePatterns: { explore: [/^\/demo\/?(?:[?#]|$)/] },
});

function projectUrl(id) {
  return `/demo/projects/${id}/${api ? `?api=${encodeURIComponent(api)}` : ''}`;
}

async function loadProjects() {
  const response = await fetch('/demo/projects.json');
  return response.json();
}

async function trendingOrder() {
  try {
    const response = await fetch(`${api || ''}/api/v1/trending/?limit=100`);
    const body = await response.json();
    return body.results.map((r) => r.project_id);
  } catch {
    return [];
  }
}

function card(project, position) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.className = 'card';
  a.href = projectUrl(project.id);
  a.dataset.projectId = String(project.id);
  a.dataset.position = String(position);
  const title = document.createElement('strong');
  title.textContent = project.title;
  const author = document.createElement('span');
  author.textContent = `@${project.author}`;
  a.append(title, author);
  li.append(a);
  return li;
}

/** Cards in `list` report clicks with their 0-based position and the list's click source. */
function trackClicksIn(list, sourceOf) {
  list.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target.closest('a.card') : null;
    if (!target) return;
    trackProjectClick(Number(target.dataset.projectId), sourceOf(),
      Number(target.dataset.position));
  });
}

async function feedPage() {
  const projects = await loadProjects();
  const trending = await trendingOrder();
  const cards = document.getElementById('cards');
  const search = document.getElementById('search');
  let tab = TABS.includes(params.get('tab')) ? params.get('tab') : 'for-you';
  search.value = params.get('q') || '';

  const orders = {
    'for-you': (ps) => [...ps].sort((a, b) => ((a.id * 7) % 12) - ((b.id * 7) % 12)),
    trending: (ps) => [...ps].sort((a, b) => rank(a) - rank(b) || a.id - b.id),
    new: (ps) => [...ps].sort((a, b) => a.age_days - b.age_days || a.id - b.id),
    news: (ps) => [...ps].sort((a, b) => a.title.localeCompare(b.title)),
  };
  function rank(p) {
    const i = trending.indexOf(p.id);
    return i === -1 ? trending.length : i;
  }

  function currentSource() {
    return search.value.trim() ? getClickSourceFromTab('search') : getClickSourceFromTab(tab);
  }

  function render() {
    const q = search.value.trim().toLowerCase();
    const shown = q
      ? projects.filter((p) => `${p.title} @${p.author}`.toLowerCase().includes(q))
      : orders[tab](projects);
    cards.replaceChildren(...shown.map(card));
    for (const button of document.querySelectorAll('#tabs button')) {
      button.setAttribute('aria-selected', String(!q && button.dataset.tab === tab));
    }
    // Keep the tab and query in the URL: the project page's referrer then tells where we were.
    const url = new URL(window.location.href);
    url.searchParams.set('tab', tab);
    if (q) url.searchParams.set('q', q); else url.searchParams.delete('q');
    window.history.replaceState(null, '', url);
    document.body.dataset.ready = 'true';
  }

  document.getElementById('tabs').addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button') : null;
    if (!button) return;
    tab = button.dataset.tab;
    search.value = '';
    render();
  });
  search.addEventListener('input', render);
  trackClicksIn(cards, currentSource);
  render();
}

async function projectPage() {
  const id = Number((window.location.pathname.match(/\/projects\/(\d+)/) || [])[1]);
  const source = getViewSourceFromReferrer();
  document.getElementById('view-source').textContent = source;
  const status = document.getElementById('view-status');
  trackProjectView(id, source).then((result) => {
    status.textContent = result;
    document.body.dataset.viewStatus = result;
  });

  const projects = await loadProjects();
  const index = projects.findIndex((p) => p.id === id);
  const project = projects[index];
  if (project) {
    document.title = `${project.title} · engagement demo`;
    document.getElementById('title').textContent = project.title;
    document.getElementById('author').textContent = `@${project.author}`;
  }
  const back = document.getElementById('back');
  if (api) back.href = `/demo/?api=${encodeURIComponent(api)}`;
  const related = document.getElementById('related');
  const others = projects.filter((p) => p.id !== id);
  const start = Math.max(index, 0) % Math.max(others.length, 1);
  const picks = [...others.slice(start), ...others.slice(0, start)].slice(0, 4);
  related.replaceChildren(...picks.map(card));
  trackClicksIn(related, () => getClickSourceFromTab('related'));
  document.body.dataset.ready = 'true';
}

if (document.body.dataset.page === 'feed') feedPage();
if (document.body.dataset.page === 'project') projectPage();
