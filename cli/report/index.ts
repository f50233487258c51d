export { collectReport, pivotSeries, MAX_ALERTS, MAX_MODELS, MAX_SERIES, MAX_USERS } from './collect';
export { renderHtml } from './html';
export { renderCsv, renderJson, renderTable, reportTitle } from './render-text';
export { alignedTable, csv, csvField, toJson } from './text';
export { bucketFor, parseInstant, planWindow } from './window';
export { burnPoints, forecast, paceWindow } from './burn';
export { OTHER_SERIES, REPORT_DIMENSIONS, REPORT_FORMATS } from './types';
export type {
  BreakdownRow,
  BudgetBurn,
  BudgetForecast,
  Measures,
  ModelSpend,
  ReportAlert,
  ReportData,
  ReportDimension,
  ReportFormat,
  ReportOptions,
  ReportTotals,
  ReportWindow,
  TeamSeries,
  UserSpend,
} from './types';
