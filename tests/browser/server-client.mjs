// A server (Node.js) sending to a leadrules daemon with Segment's analytics-node.
// Run: node server-client.mjs DAEMON_URL WRITE_KEY USER_ID
import { Analytics } from '@segment/analytics-node'

const [host, writeKey, userId] = process.argv.slice(2)

// Only for the test: note each request and the daemon's answer, then send it with fetch.
const exchanges = []
const noting = async (url, init) => {
  const response = await fetch(url, init)
  const headers = Object.fromEntries(Object.entries(init.headers).map(([k, v]) => [k.toLowerCase(), v]))
  exchanges.push({ method: init.method, url, headers, status: response.status })
  return response
}

const analytics = new Analytics({
  writeKey,
  host, // the daemon, e.g. 'https://leads.example.com'; it posts to host + '/v1/batch'
  maxRetries: 1,
  httpClient: noting,
})

const day = 86_400_000
const now = Date.now()
analytics.identify({ userId, traits: { name: 'Sam Lee', title: 'VP Sales', company: { size: 900 } } })
// Three views of /pricing, out of timestamp order: now, two days ago, yesterday.
for (const ago of [0, 2 * day, day]) {
  analytics.page({ userId, name: 'Pricing', properties: { path: '/pricing' }, timestamp: new Date(now - ago) })
}
analytics.track({ userId, event: 'Pricing Calculator Used', properties: { plan: 'team' } })
await analytics.closeAndFlush()
console.log(JSON.stringify(exchanges))
