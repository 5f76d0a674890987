// analytics.js (Segment's analytics-next from npm) sending to a leadrules daemon.
// Nothing is fetched from Segment's CDN: the settings it would download are given inline.
import { AnalyticsBrowser } from '@segment/analytics-next'

// The daemon's address and a write key from its `ingest.write_keys`. This page reads them
// from `window.leadrules`; on a real site, write them in, e.g. 'leads.example.com/v1'.
const { writeKey, apiHost, protocol, batching } = window.leadrules

const segmentIo = {
  apiKey: writeKey,
  apiHost, // host:port/v1 of the daemon; the tracker posts to /v1/t, /v1/p, /v1/i, ...
  protocol, // 'https' in production
  // Batching posts to /v1/b instead, several events per request.
  ...(batching ? { deliveryStrategy: { strategy: 'batching', config: { size: 10, timeout: 500 } } } : {}),
}

window.analytics = AnalyticsBrowser.load(
  { writeKey, cdnSettings: { integrations: { 'Segment.io': segmentIo } } },
  { integrations: { 'Segment.io': segmentIo } },
)
