// RudderStack's JavaScript SDK v3 (npm, plugins bundled in) with a leadrules daemon as its
// data plane. Nothing is fetched from RudderStack: the source configuration is given inline
// and no device-mode destination or remote plugin is loaded.
import { RudderAnalytics } from '@rudderstack/analytics-js/bundled'

// The daemon's URL and a write key from its `ingest.write_keys`. This page reads them from
// `window.leadrules`; on a real site, write them in, e.g. 'https://leads.example.com'.
const { writeKey, dataPlaneUrl } = window.leadrules

const rudderanalytics = new RudderAnalytics()
rudderanalytics.load(writeKey, dataPlaneUrl, {
  // What the SDK would otherwise download from RudderStack's control plane.
  getSourceConfig: () => ({
    source: {
      id: 'leadrules',
      name: 'Website',
      writeKey,
      enabled: true,
      workspaceId: 'leadrules',
      config: {},
      destinations: [],
    },
  }),
  loadIntegration: false, // no device-mode destination SDKs
  polyfillIfRequired: false, // no polyfill download for old browsers
  destSDKBaseURL: `${window.location.origin}/no-destination-sdks`,
  pluginsSDKBaseURL: `${window.location.origin}/no-remote-plugins`,
})
window.rudderanalytics = rudderanalytics
