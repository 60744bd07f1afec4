// The demo app, like the one in the httpd/Tomcat clustering tutorial.
// Run by `cohort node --app examples/demo-app.mjs`; req.session is the replicated session.
//   /examples/instance.txt  which node answered
//   /examples/counter       the node, the session id and a session counter
const route = process.env.COHORT_ROUTE ?? 'unknown';

export default function demoApp(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/examples/instance.txt') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${route}\n`);
    return;
  }
  if (url.pathname === '/examples/counter') {
    const s = req.session;
    s.count = (s.count ?? 0) + 1;
    s.history ??= [];
    s.history.push(route); // changed in place: replicated without any setAttribute
    if (s.history.length > 10) s.history.shift();
    const body = { node: route, session: s.id, count: s.count, servedBy: s.history };
    if ((req.headers.accept ?? '').includes('application/json')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`node=${route} session=${s.id} count=${s.count}\n`);
    return;
  }
  if (url.pathname === '/examples/' || url.pathname === '/examples') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Cohort demo</title><h1>Served by ${route}</h1>
<p><a href="/examples/instance.txt">instance.txt</a> · <a href="/examples/counter">counter</a></p>`);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
}
