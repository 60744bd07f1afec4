/**
 * Browser code of the dashboard's session-cluster panel (ClusterSource).
 * Same rules as the balancer panel: DOM through textContent/setAttribute only.
 */
export const CLUSTER_PANEL_SCRIPT = `
(function () {
  var st = { tiles: null, history: null, note: null };
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function nodeState(n) {
    if (n.state !== 'alive') return n.state;
    if (n.meta.role === 'node' && n.meta.ready !== 'true') return 'joining';
    return 'alive';
  }
  function render(v) {
    st.note.textContent = v.attached ? 'cluster "' + v.cluster + '" as this balancer sees it' : 'this balancer has not joined a cluster';
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
      if (n.meta.transfer !== undefined) facts.push('transfer ' + n.meta.transfer);
      if (n.meta.load !== undefined) facts.push('load ' + n.meta.load);
      if (n.rttMs !== null) facts.push('rtt ' + n.rttMs.toFixed(1) + ' ms');
      if (n.queueDepth !== null) facts.push('queue ' + n.queueDepth);
      if (!n.self && n.lastSeenAgoMs !== null) facts.push('seen ' + (n.lastSeenAgoMs / 1000).toFixed(1) + ' s ago');
      t.appendChild(el('div', { 'class': 'why' }, facts.join(' · ')));
      st.tiles.appendChild(t);
    });
  }
  function addHistory(e) {
    var li = el('li', { 'class': 'h-' + e.kind });
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
      root.appendChild(el('h3', {}, 'Membership changes'));
      st.history = el('ol', { 'class': 'history', id: 'cluster-history', reversed: '' });
      root.appendChild(st.history);
      render(snap);
      snap.history.forEach(addHistory);
    },
    event: function (type, data) {
      if (type === 'state') { render(data); addHistory(data.entry); }
      else if (type === 'sample') render(data);
    }
  });
})();
`;
