/**
 * Browser code of the dashboard's session-cluster panel (ClusterSource).
 * Same rules as the balancer panel: DOM through textContent/setAttribute only
 * (SVG included), so routes and meta values can never become markup.
 *
 * Draws: a tile per node (with a state-transfer progress bar while a node
 * receives sessions), the membership matrix — row = observer, column =
 * member, colour = what the observer sees — with its legend, and the history.
 */
export const CLUSTER_PANEL_SCRIPT = `
(function () {
  var SVGNS = 'http://www.w3.org/2000/svg';
  var CELL = 20, GAP = 2, LABEL_CHARS = 18;
  var CELL_COLORS = { alive: '#18794e', suspect: '#b76e00', absent: '#b42318', unknown: '#d0d5dd', self: '#ffffff' };
  var CELL_TEXT = {
    alive: 'alive', suspect: 'suspect', absent: 'not in its view (gone or never seen)',
    unknown: 'unknown (no report)', self: 'itself'
  };
  var st = { tiles: null, history: null, note: null, matrix: null };
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function short(s) { return s.length > LABEL_CHARS ? s.slice(0, LABEL_CHARS - 1) + '\\u2026' : s; }
  function nodeState(n) {
    if (n.state !== 'alive') return n.state;
    if (n.meta.role === 'node' && n.meta.ready !== 'true') return 'joining';
    return 'alive';
  }
  function progress(tr) {
    var box = el('div', { 'class': 'transfer', 'data-transfer': tr.state, 'data-received': String(tr.received), 'data-total': String(tr.total) });
    var pct = tr.total > 0 ? Math.min(100, Math.round(100 * tr.received / tr.total)) : (tr.state === 'running' ? 0 : 100);
    var bar = el('div', { 'class': 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct) });
    var fill = el('div', { 'class': 'fill' });
    fill.style.width = pct + '%';
    bar.appendChild(fill);
    box.appendChild(bar);
    var words = tr.state === 'running'
      ? 'receiving sessions ' + tr.received + '/' + (tr.total > 0 ? tr.total : '?') + ' (' + pct + '%)'
      : 'transfer ' + tr.text;
    box.appendChild(el('div', { 'class': 'why' }, words));
    return box;
  }
  function renderTiles(v) {
    st.tiles.textContent = '';
    v.nodes.forEach(function (n) {
      var s = nodeState(n);
      var t = el('div', { 'class': 'tile node-' + s, 'data-node': n.route, 'data-state': s });
      t.appendChild(el('strong', {}, n.route + (n.self ? ' (this balancer)' : '')));
      t.appendChild(el('div', { 'class': 'st' }, s + ' · ' + (n.meta.role || '?') + ' · inc ' + n.incarnation));
      if (n.meta.http) t.appendChild(el('div', { 'class': 'url' }, n.meta.http));
      var facts = [];
      if (n.meta.sessions !== undefined) facts.push(n.meta.sessions + ' sessions');
      if (n.meta.replicationLagMs !== undefined) facts.push('lag ' + n.meta.replicationLagMs + ' ms');
      if (n.meta.loadfactor !== undefined) facts.push('lf ' + n.meta.loadfactor);
      if (n.meta.load !== undefined) facts.push('load ' + n.meta.load);
      if (n.rttMs !== null) facts.push('rtt ' + n.rttMs.toFixed(1) + ' ms');
      if (n.queueDepth !== null) facts.push('queue ' + n.queueDepth);
      if (!n.self && n.lastSeenAgoMs !== null) facts.push('seen ' + (n.lastSeenAgoMs / 1000).toFixed(1) + ' s ago');
      t.appendChild(el('div', { 'class': 'why' }, facts.join(' · ')));
      if (n.transfer) t.appendChild(progress(n.transfer));
      st.tiles.appendChild(t);
    });
  }
  function renderMatrix(m) {
    var box = st.matrix;
    box.textContent = '';
    if (!m.rows.length) return;
    var longest = 0;
    m.columns.forEach(function (c) { longest = Math.max(longest, short(c).length); });
    var left = 12 + 7 * longest + 60, top = 12 + 5 * longest;
    // Column labels are rotated 45° up and to the right: room above and to the right for the longest.
    var w = left + m.columns.length * (CELL + GAP) + 5 * longest + 8, h = top + m.rows.length * (CELL + GAP) + 8;
    var svg = sv('svg', { width: String(w), height: String(h), viewBox: '0 0 ' + w + ' ' + h, role: 'img', 'class': 'matrix' });
    svg.appendChild(sv('title', {}, 'What each node sees of the membership: row = observer, column = member'));
    m.columns.forEach(function (c, j) {
      var x = left + j * (CELL + GAP) + CELL / 2, y = top - 6;
      var t = sv('text', { x: String(x), y: String(y), transform: 'rotate(-45 ' + x + ' ' + y + ')', 'font-size': '11', 'data-column': c }, short(c));
      t.appendChild(sv('title', {}, c));
      svg.appendChild(t);
    });
    m.rows.forEach(function (r, i) {
      var y = top + i * (CELL + GAP);
      var label = short(r.route) + (r.self ? ' (lb)' : r.state !== 'alive' ? ' (' + r.state + ')' : r.reported ? '' : ' (no report)');
      var t = sv('text', { x: String(left - 6), y: String(y + CELL * 0.7), 'text-anchor': 'end', 'font-size': '11', 'data-row': r.route }, label);
      t.appendChild(sv('title', {}, r.route));
      svg.appendChild(t);
      r.cells.forEach(function (cell, j) {
        var rect = sv('rect', {
          x: String(left + j * (CELL + GAP)), y: String(y), width: String(CELL), height: String(CELL), rx: '3',
          fill: CELL_COLORS[cell] || CELL_COLORS.unknown, stroke: '#9aa1ab', 'stroke-width': cell === 'self' ? '1' : '0',
          'class': 'cell cell-' + cell, 'data-observer': r.route, 'data-member': m.columns[j], 'data-cell': cell
        });
        rect.appendChild(sv('title', {}, r.route + ' sees ' + m.columns[j] + ': ' + (CELL_TEXT[cell] || cell)));
        svg.appendChild(rect);
      });
    });
    box.appendChild(svg);
    var legend = el('div', { 'class': 'legend' });
    ['alive', 'suspect', 'absent', 'unknown', 'self'].forEach(function (k) {
      var item = el('span', { 'class': 'item', 'data-legend': k });
      var sw = el('span', { 'class': 'swatch' });
      sw.style.background = CELL_COLORS[k];
      sw.style.border = '1px solid #9aa1ab';
      item.appendChild(sw);
      item.appendChild(document.createTextNode(CELL_TEXT[k]));
      legend.appendChild(item);
    });
    box.appendChild(legend);
  }
  function render(v) {
    st.note.textContent = v.attached ? 'cluster "' + v.cluster + '" as this balancer sees it' : 'this balancer has not joined a cluster';
    renderTiles(v);
    renderMatrix(v.matrix);
  }
  function addHistory(e) {
    var li = el('li', { 'class': 'h-' + e.kind + (e.tone ? ' tone-' + e.tone : '') });
    li.appendChild(el('time', {}, new Date(e.at).toLocaleTimeString()));
    li.appendChild(document.createTextNode(' ' + e.text));
    st.history.insertBefore(li, st.history.firstChild);
    while (st.history.childNodes.length > 200) st.history.removeChild(st.history.lastChild);
  }
  Cohort.panel('cluster', {
    init: function (root, snap) {
      root.textContent = '';
      st.note = el('p', { 'class': 'meta' });
      root.appendChild(st.note);
      st.tiles = el('div', { 'class': 'tile-group', id: 'nodes' });
      root.appendChild(st.tiles);
      root.appendChild(el('h3', {}, 'What each node sees of the membership'));
      st.matrix = el('div', { 'class': 'matrix-box', id: 'membership-matrix' });
      root.appendChild(st.matrix);
      root.appendChild(el('h3', {}, 'Membership changes'));
      st.history = el('ol', { 'class': 'history', id: 'cluster-history', reversed: '' });
      root.appendChild(st.history);
      render(snap);
      snap.history.forEach(addHistory);
    },
    event: function (type, data) {
      if (type === 'state') { render(data); addHistory(data.entry); }
      else if (type === 'sample' || type === 'update') render(data);
    }
  });
})();
`;
