/**
 * An alert as a Slack incoming-webhook message (`{ text, blocks }`, Block Kit). Pure: no I/O. `text` is the
 * notification and fallback line (severity emoji + the alert's one-line message); the blocks add a header, the
 * figures (team and scope, window, observed vs expected, score, rule, budget), the top contributors and a
 * context line with the alert_id, so people can match a post to `tokenledger alerts tail` and the alerts table.
 * Other receivers of Slack's webhook format (Mattermost, Rocket.Chat, ...) show at least `text`.
 *
 * Slack's limits are respected: header ≤ 150 characters, a section's text ≤ 3000, ≤ 10 fields of ≤ 2000;
 * user-supplied strings are escaped (&, <, >) so an id cannot become a link or a mention.
 */
import { formatDuration, formatUsd } from '../detect/alerts';
import type { Alert, AlertBudget, AlertKind, AlertSeverity } from '../../schemas/alert/types';

export interface SlackText {
  readonly type: 'plain_text' | 'mrkdwn';
  readonly text: string;
  readonly emoji?: boolean;
}

export type SlackBlock =
  | { readonly type: 'header'; readonly text: SlackText }
  | { readonly type: 'section'; readonly text?: SlackText; readonly fields?: readonly SlackText[] }
  | { readonly type: 'context'; readonly elements: readonly SlackText[] }
  | { readonly type: 'divider' };

export interface SlackMessage {
  readonly text: string;
  readonly blocks: readonly SlackBlock[];
}

export const SEVERITY_EMOJI: Readonly<Record<AlertSeverity, string>> = {
  info: ':information_source:',
  warning: ':warning:',
  critical: ':rotating_light:',
};

/** A resolved spike is good news whatever its severity. */
const RESOLVED_EMOJI = ':white_check_mark:';

const KIND_TITLE: Readonly<Record<AlertKind, string>> = {
  cost_spike: 'Cost spike',
  spike_resolved: 'Spike resolved',
  budget_threshold: 'Budget threshold',
  budget_burn_rate: 'Budget burn rate',
  budget_forecast: 'Budget forecast',
};

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** "2026-11-29 12:00 UTC" (seconds only when they are not zero). */
export function formatInstant(ms: number): string {
  const iso = new Date(ms).toISOString();
  const secs = iso.slice(17, 19);
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}${secs === '00' ? '' : `:${secs}`} UTC`;
}

/** "2026-11-29 12:00–12:15 UTC (15 min)"; the end date is repeated when the window crosses midnight. */
export function formatWindow(start: number, end: number): string {
  const a = formatInstant(start).replace(/ UTC$/, '');
  const b = formatInstant(end).replace(/ UTC$/, '');
  const sameDay = a.slice(0, 10) === b.slice(0, 10);
  return `${a}–${sameDay ? b.slice(11) : b} UTC (${formatDuration(end - start)})`;
}

/** Whole numbers with thousands separators, exact for bigint. */
export function formatCount(n: bigint | number): string {
  return (typeof n === 'bigint' ? n : BigInt(Math.round(n))).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `part / whole` as a percent with one decimal, exact integer arithmetic ("81.3%"); "n/a" when whole ≤ 0. */
export function formatPercent(part: bigint, whole: bigint): string {
  if (whole <= 0n) return 'n/a';
  const tenths = (part * 1000n + whole / 2n) / whole;
  const sign = tenths < 0n ? '-' : '';
  const abs = tenths < 0n ? -tenths : tenths;
  return `${sign}${abs / 10n}.${abs % 10n}%`;
}

function amount(unit: AlertBudget['unit'], n: bigint): string {
  return unit === 'usd' ? formatUsd(n) : `${formatCount(n)} tokens`;
}

/** Team and scope in words: "team-search", "team-search · model claude-opus-4-1", "project search (team-x)". */
export function describeScope(a: Alert): string {
  switch (a.scope) {
    case 'team_model':
      return `${a.team_id} · model ${a.model ?? '?'}`;
    case 'team_user':
      return `${a.team_id} · user ${a.user_id ?? '?'}`;
    case 'project':
      return `project ${a.project_id ?? '?'} (team ${a.team_id})`;
    case 'user':
      return `user ${a.user_id ?? '?'} (team ${a.team_id})`;
    case 'team':
      return a.team_id;
  }
}

function budgetFields(b: AlertBudget): SlackText[] {
  const lines = [
    `*Budget*\n${escapeMrkdwn(b.budget_id)}: ${amount(b.unit, b.limit)} per ${b.period} (${escapeMrkdwn(b.time_zone)})`,
    `*Spent this ${b.period}*\n${amount(b.unit, b.spent)} (${formatPercent(b.spent, b.limit)}) since ${formatInstant(b.period_start)}`,
  ];
  if (b.threshold_percent !== null) lines.push(`*Threshold crossed*\n${b.threshold_percent}%`);
  if (b.burn_rate !== null) {
    lines.push(
      `*Burn rate*\n${b.burn_rate.toFixed(1)}x${b.burn_window === null ? '' : ` over ${escapeMrkdwn(b.burn_window)}`}`,
    );
  }
  if (b.forecast_exhausted_at !== null) {
    lines.push(
      `*Runs out*\n${formatInstant(b.forecast_exhausted_at)} (period ends ${formatInstant(b.period_end)})`,
    );
  }
  return lines.map((text) => ({ type: 'mrkdwn', text: clip(text, 2000) }));
}

function figureFields(a: Alert): SlackText[] {
  const isBudget = a.budget !== null;
  const fields: string[] = [
    `*Team / scope*\n${escapeMrkdwn(describeScope(a))}`,
    `*Window*\n${formatWindow(a.window_start, a.window_end)}`,
  ];
  if (isBudget) {
    fields.push(
      `*Observed in window*\n${formatUsd(a.observed_cost_nanousd)}, ${formatCount(a.observed_tokens)} tokens`,
    );
  } else {
    fields.push(
      `*Observed vs expected*\n${formatUsd(a.observed_cost_nanousd)} vs ${formatUsd(a.expected_cost_nanousd)}`,
      `*Tokens*\n${formatCount(a.observed_tokens)} vs ${formatCount(a.expected_tokens)} expected`,
    );
  }
  fields.push(`*Score*\n${Number.isFinite(a.score) ? a.score.toFixed(2) : String(a.score)}`);
  fields.push(`*Rule*\n${escapeMrkdwn(a.rule)}`);
  const out: SlackText[] = fields.map((text) => ({ type: 'mrkdwn', text: clip(text, 2000) }));
  return isBudget && a.budget !== null ? [...out, ...budgetFields(a.budget)] : out;
}

function contributorsText(a: Alert): string | undefined {
  if (a.top_contributors.length === 0) return undefined;
  const lines = a.top_contributors.map(
    (c) =>
      `• ${c.dimension} \`${escapeMrkdwn(c.value)}\`: ${formatUsd(c.cost_nanousd)} (${Math.round(c.share * 100)}%)`,
  );
  return clip(`*Top contributors*\n${lines.join('\n')}`, 3000);
}

/** The Slack incoming-webhook body for one alert. */
export function slackMessage(a: Alert): SlackMessage {
  const emoji = a.kind === 'spike_resolved' ? RESOLVED_EMOJI : SEVERITY_EMOJI[a.severity];
  const title = `${KIND_TITLE[a.kind]} (${a.severity}): ${describeScope(a)}`;
  const fields = figureFields(a);
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`${emoji} ${title}`, 150), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: clip(escapeMrkdwn(a.message), 3000) } },
    // a section holds at most 10 fields
    { type: 'section', fields: fields.slice(0, 10) },
  ];
  if (fields.length > 10) blocks.push({ type: 'section', fields: fields.slice(10) });
  const contributors = contributorsText(a);
  if (contributors !== undefined)
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: contributors } });
  const context = [
    `alert_id \`${escapeMrkdwn(a.alert_id)}\``,
    ...(a.related_alert_id === null
      ? []
      : [
          `${a.kind === 'spike_resolved' ? 'resolves' : 'escalates'} \`${escapeMrkdwn(a.related_alert_id)}\``,
        ]),
    a.kind,
    `fired ${formatInstant(a.fired_at)}`,
    escapeMrkdwn(a.detector),
  ].join(' · ');
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(context, 3000) }] });
  return { text: clip(`${emoji} ${escapeMrkdwn(a.message)}`, 3000), blocks };
}
