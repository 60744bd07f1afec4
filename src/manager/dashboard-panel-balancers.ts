/**
 * Browser code of the dashboard's balancer panel (a DashboardSource's
 * clientScript). Plain ES5-style JavaScript, run under the page's CSP nonce.
 * Builds DOM with textContent/setAttribute only, so member names and routes
 * can never become markup. Draws charts as inline SVG (no CDN, no network).
 */
export const BALANCERS_PANEL_SCRIPT = `
(function () {
  var SVGNS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#2b7bb9', '#e6550d', '#31a354', '#756bb1', '#d62728', '#8c564b', '#17becf', '#bcbd22'];
  var POINTS = 120;
  var st = { root: null, series: {}, colors: {}, next: 0, tiles: null, history: null, charts: {} };
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function sv(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function key(b, r) { return b + '/' + r; }
  function color(k) {
    if (!st.colors[k]) { st.colors[k] = COLORS[st.next % COLORS.length]; st.next++; }
    return st.colors[k];
  }
  function tileState(m) {
    if (m.status.indexOf('disabled') >= 0 || m.status.indexOf('stopped') >= 0) return 'disabled';
    if (m.health !== 'ok') return m.health;
    if (m.status.indexOf('drain') >= 0) return 'drain';
    if (m.status.indexOf('hot-standby') >= 0) return 'hot-standby';
    return 'ok';
  }
  function act(balancer, route, body) {
    return fetch(Cohort.api + '/balancers/' + encodeURIComponent(balancer) + '/members/' + encodeURIComponent(route), {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': Cohort.csrf || '' },
      body: JSON.stringify(body)
    }).then(function (r) { if (!r.ok) return r.json().then(function (j) { Cohort.status('action failed: ' + (j.error && j.error.message)); }); });
  }
  function heading(b) {
    return 'balancer://' + b.name + ' · ' + b.method + ' · queued ' + b.queued + ' · unavailable (503) ' + b.unavailable;
  }
  function renderTiles(balancers) {
    var t = st.tiles;
    t.textContent = '';
    balancers.forEach(function (b) {
      var group = el('div', { 'class': 'tile-group', 'data-balancer': b.name });
      group.appendChild(el('h3', { 'class': 'bal-head' }, heading(b)));
      b.members.forEach(function (m) {
        var k = key(b.name, m.route);
        var s = tileState(m);
        var tile = el('div', { 'class': 'tile state-' + s, 'data-member': m.route, 'data-balancer': b.name, 'data-state': s });
        var sw = el('span', { 'class': 'swatch' });
        sw.style.background = color(k);
        tile.appendChild(sw);
        tile.appendChild(el('strong', {}, m.route));
        tile.appendChild(el('div', { 'class': 'url' }, m.url));
        tile.appendChild(el('div', { 'class': 'st' }, s + (m.flags !== 'Ok' ? ' · ' + m.flags : '') + ' · lf ' + m.loadfactor + ' · lbset ' + m.lbset + ' · busy ' + m.busy));
        if (m.reason) tile.appendChild(el('div', { 'class': 'why' }, m.reason.source + ': ' + m.reason.message));
        var prev = st.series[k];
        var rps = prev && prev.rps.length ? prev.rps[prev.rps.length - 1] : 0;
        tile.appendChild(el('div', { 'class': 'rate', 'data-rps': String(rps) }, rps.toFixed(1) + ' req/s'));
        var off = m.status.indexOf('disabled') >= 0;
        var btn = el('button', { 'class': 'toggle', 'data-action': off ? 'enable' : 'disable' }, off ? 'Enable' : 'Disable');
        btn.addEventListener('click', function () {
          var status = {}; status.disabled = !off;
          act(b.name, m.route, { status: status });
        });
        tile.appendChild(btn);
        group.appendChild(tile);
      });
      t.appendChild(group);
    });
  }
  function chart(title, unit) {
    var box = el('div', { 'class': 'chart' });
    box.appendChild(el('h3', {}, title));
    var s = sv('svg', { viewBox: '0 0 600 160', width: '600', height: '160', role: 'img', 'aria-label': title });
    s.appendChild(sv('rect', { x: '0', y: '0', width: '600', height: '160', fill: '#fff', stroke: '#d8dce3' }));
    var label = sv('text', { x: '4', y: '12', 'font-size': '11', fill: '#555' });
    s.appendChild(label);
    var lines = sv('g', {});
    s.appendChild(lines);
    box.appendChild(s);
    var legend = el('div', { 'class': 'legend' });
    box.appendChild(legend);
    return { box: box, label: label, lines: lines, legend: legend, unit: unit };
  }
  function draw(c, field) {
    var max = 0;
    Object.keys(st.series).forEach(function (k) {
      st.series[k][field].forEach(function (v) { if (v !== null && v > max) max = v; });
    });
    max = max > 0 ? max * 1.15 : 1;
    c.label.textContent = 'max ' + max.toFixed(1) + ' ' + c.unit;
    c.lines.textContent = '';
    c.legend.textContent = '';
    Object.keys(st.series).forEach(function (k) {
      var data = st.series[k][field];
      var pts = [];
      var off = POINTS - data.length;
      data.forEach(function (v, i) {
        if (v === null) return;
        pts.push(((off + i) * 600 / (POINTS - 1)).toFixed(1) + ',' + (158 - (v / max) * 140).toFixed(1));
      });
      c.lines.appendChild(sv('polyline', { points: pts.join(' '), fill: 'none', stroke: color(k), 'stroke-width': '2', 'data-series': k }));
      var item = el('span', { 'class': 'item' });
      var sw = el('span', { 'class': 'swatch' });
      sw.style.background = color(k);
      item.appendChild(sw);
      var last = data.length ? data[data.length - 1] : null;
      item.appendChild(document.createTextNode(k + ' ' + (last === null ? '—' : last.toFixed(1) + ' ' + c.unit)));
      c.legend.appendChild(item);
    });
  }
  function addHistory(e) {
    var li = el('li', { 'class': 'h-' + e.kind + (e.tone ? ' tone-' + e.tone : '') });
    li.appendChild(el('time', {}, new Date(e.at).toLocaleTimeString()));
    li.appendChild(document.createTextNode(' [' + e.balancer + '] ' + e.text));
    st.history.insertBefore(li, st.history.firstChild);
    while (st.history.childNodes.length > 200) st.history.removeChild(st.history.lastChild);
  }
  Cohort.panel('balancers', {
    init: function (root, snap) {
      root.textContent = '';
      st.tiles = el('div', { 'class': 'tiles', id: 'tiles' });
      root.appendChild(st.tiles);
      var charts = el('div', { 'class': 'charts' });
      st.charts.rps = chart('Requests per second', 'req/s');
      st.charts.lat = chart('Mean latency', 'ms');
      st.charts.rps.box.setAttribute('id', 'chart-rps');
      st.charts.lat.box.setAttribute('id', 'chart-latency');
      charts.appendChild(st.charts.rps.box);
      charts.appendChild(st.charts.lat.box);
      root.appendChild(charts);
      root.appendChild(el('h3', {}, 'State changes'));
      st.history = el('ol', { 'class': 'history', id: 'history', reversed: '' });
      root.appendChild(st.history);
      st.series = {};
      renderTiles(snap.balancers);
      snap.history.forEach(addHistory);
      (snap.samples || []).forEach(function (x) { sample(x, false); });
      if (snap.samples && snap.samples.length) sample(snap.samples[snap.samples.length - 1], true, true);
    },
    event: function (type, data) {
      if (type === 'state') {
        renderTiles(data.balancers);
        addHistory(data.entry);
      } else if (type === 'sample') {
        sample(data, true);
      }
    }
  });
  function sample(data, render, replay) {
    var seen = {};
    data.members.forEach(function (m) {
      var k = key(m.balancer, m.route);
      seen[k] = true;
      var s = st.series[k] || (st.series[k] = { rps: [], lat: [] });
      if (!replay) {
        s.rps.push(m.rps);
        s.lat.push(m.latencyMs);
        if (s.rps.length > POINTS) { s.rps.shift(); s.lat.shift(); }
      }
    });
    Object.keys(st.series).forEach(function (k) { if (!seen[k]) delete st.series[k]; });
    if (!render) return;
    (data.balancers || []).forEach(function (b) {
      var groups = st.tiles.querySelectorAll('.tile-group');
      for (var i = 0; i < groups.length; i++) {
        if (groups[i].getAttribute('data-balancer') === b.name) groups[i].querySelector('.bal-head').textContent = heading(b);
      }
    });
    draw(st.charts.rps, 'rps');
    draw(st.charts.lat, 'lat');
    data.members.forEach(function (m) {
      var tiles = st.tiles.querySelectorAll('.tile');
      for (var i = 0; i < tiles.length; i++) {
        var t = tiles[i];
        if (t.getAttribute('data-balancer') === m.balancer && t.getAttribute('data-member') === m.route) {
          var r = t.querySelector('.rate');
          r.setAttribute('data-rps', String(m.rps));
          r.textContent = m.rps.toFixed(1) + ' req/s' + (m.latencyMs === null ? '' : ' · ' + m.latencyMs.toFixed(1) + ' ms');
        }
      }
    });
  }
})();
`;
