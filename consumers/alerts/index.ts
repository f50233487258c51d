export {
  ALERT_ID_HEADER,
  ALERTS_TABLE,
  alertRow,
  createAlertSink,
  dateTime64,
  openSpikes,
  recordedAlertIds,
} from './sink';
export type { AlertRow, AlertSink, AlertSinkDeps, OpenSpike } from './sink';
export {
  DEFAULT_RELAY_GROUP,
  LruSet,
  MAX_RETRY_AFTER_MS,
  backoffMs,
  createAlertRelay,
  retryAfterMs,
  verdictOf,
  webhookOrigin,
} from './relay';
export type { AlertRelay, AlertRelayOptions, PostVerdict, RelayCounts } from './relay';
export { SEVERITY_EMOJI, describeScope, escapeMrkdwn, slackMessage } from './slack';
export type { SlackBlock, SlackMessage, SlackText } from './slack';
