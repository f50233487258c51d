/** The shape every local service (broker, ClickHouse endpoint) has, so `infra up|down|status` treats them alike. */
export interface ServiceStatus {
  readonly name: string;
  readonly address: string;
  readonly running: boolean;
  readonly answering: boolean;
  readonly pid: number | undefined;
  readonly logFile: string;
}

export interface LocalService {
  readonly name: string;
  /** Idempotent: a service already running and answering is left as it is. */
  start(): Promise<'started' | 'already-running'>;
  /** Idempotent: stopping a service that is not running is fine. No process is left behind. */
  stop(): Promise<'stopped' | 'not-running'>;
  status(): Promise<ServiceStatus>;
}
