// Types of the engagement tracking client: /static/tracking.js, or the npm package built from it.

export type ViewSource = 'explore' | 'profile' | 'direct' | 'search' | 'embed';
export type ClickSource =
  | 'explore_for_you' | 'explore_trending' | 'explore_new' | 'explore_news'
  | 'search' | 'profile' | 'related';
export type FeedTab = 'for-you' | 'trending' | 'new' | 'news' | 'search' | 'profile' | 'related';
export type ProjectId = number | string | bigint;
/** An A/B variant of a feed algorithm: 1-32 of a-z 0-9 _ - (see VARIANT_PATTERN). */
export type Variant = string;

/** A referrer pattern: a RegExp tested against `pathname + search`, a pathname prefix, or a test. */
export type ReferrerPattern = RegExp | string | ((referrer: URL) => boolean);

/**
 * What became of a view: the server's answer (`recorded`, `deduplicated`, or `ignored` for a
 * known bot), `not_found` (unknown or private project), `rejected` (another 4xx), `failed`
 * (retries exhausted), `sent` (handed to the browser at page unload; answer unknown),
 * `invalid` (bad project id or source; nothing sent) or `opted_out` (`respectDoNotTrack` is
 * set and the visitor sends GPC or DNT; nothing sent).
 */
export type ViewResult =
  | 'recorded' | 'deduplicated' | 'ignored' | 'not_found' | 'rejected' | 'failed' | 'sent'
  | 'invalid' | 'opted_out';

export interface BatchResult {
  status: 'sent' | 'ignored' | 'rejected' | 'failed' | 'opted_out';
  count: number;
  skipped: number;
}

export interface TrackingError {
  kind: 'view' | 'click' | 'clicks' | 'impression' | 'impressions' | 'token' | 'config';
  reason: string;
  status?: number | null;
  attempts?: number;
  error?: unknown;
}

export interface TrackingOptions {
  /** Origin (and optional path prefix) of the engagement service. Default: the origin this module was loaded from. */
  baseUrl?: string;
  /** A signed-in user's JWT, sent as `Authorization: Bearer`. */
  token?: string | null;
  /** Called before each request when `token` is not set; may return a promise. */
  getToken?: (() => string | null | undefined | Promise<string | null | undefined>) | null;
  /** Anonymous session key sent as `X-Session-Key` (default: cookies identify the viewer). */
  sessionKey?: string | null;
  /** fetch credentials mode; default 'include' so the service's cookies work cross-origin. */
  credentials?: RequestCredentials;
  /** Delay before queued clicks are sent, ms (default 1000). */
  flushDelayMs?: number;
  /** Clicks per request, 1–50 (default 50); a full batch is sent at once. */
  batchSize?: number;
  /** Clicks kept at most while the service is unreachable (default 1000). */
  maxQueueSize?: number;
  /** Retries after the first attempt on network errors, 5xx and 429 (default 8). */
  maxRetries?: number;
  /** First retry delay, doubled per retry with jitter (default 500 ms). */
  retryBaseMs?: number;
  /** Longest retry delay (default 30000 ms); also caps Retry-After. */
  retryMaxMs?: number;
  /** Referrer patterns per view source, replacing the defaults of the sources given. */
  viewSourcePatterns?: Partial<Record<'explore' | 'profile' | 'search', ReferrerPattern[]>>;
  /** Origins whose referrers count as the site's own (default: the page's origin). */
  siteOrigins?: string[] | null;
  /**
   * Send nothing at all while the visitor signals Global Privacy Control
   * (`navigator.globalPrivacyControl === true`) or Do Not Track (`navigator.doNotTrack === '1'`,
   * or the legacy `window.doNotTrack` / `navigator.msDoNotTrack`): views resolve `opted_out`,
   * clicks and impressions are not queued (false), observeImpressions watches nothing, and
   * events queued earlier are dropped. Default false: the signals are ignored.
   */
  respectDoNotTrack?: boolean;
  /** Told about rejected, given-up or invalid events; for logging only. */
  onError?: ((error: TrackingError) => void) | null;
}

/** Injectable browser APIs (for tests and unusual hosts); defaults come from globalThis. */
export interface TrackerEnvironment {
  fetch?: typeof fetch | null;
  sendBeacon?: ((url: string, data: Blob) => boolean) | null;
  navigator?: { globalPrivacyControl?: boolean; doNotTrack?: string | null;
                msDoNotTrack?: string | null } | null;
  window?: { top?: unknown; self?: unknown; addEventListener?: Function;
             doNotTrack?: string | null } | null;
  document?: { referrer?: string; visibilityState?: string; addEventListener?: Function } | null;
  location?: { origin: string; href: string } | null;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
  random?: () => number;
  crypto?: Crypto | null;
  IntersectionObserver?: typeof IntersectionObserver | null;
  MutationObserver?: typeof MutationObserver | null;
  moduleOrigin?: string;
}

export interface ImpressionOptions {
  /** The feed the cards are in. */
  source: ClickSource;
  /** CSS selector of the cards inside the container (default '[data-project-id]'). */
  selector?: string;
  /** A card's project id (default its data-project-id attribute). */
  getProjectId?: (card: Element) => ProjectId | null | undefined;
  /** A card's 0-based position (default data-position, else its index among the cards). */
  getPosition?: (card: Element) => number | string | null | undefined;
  /** The A/B variant that ranked this feed, for every card ... */
  variant?: Variant | null;
  /** ... or per card. */
  getVariant?: (card: Element) => Variant | null | undefined;
  /** Share of the card that must be in view, 0-1 (default 0.5). */
  threshold?: number;
  /** How long it must stay in view, ms (default 1000). */
  minVisibleMs?: number;
  /** The scrolling element, if not the viewport. */
  root?: Element | Document | null;
}

export interface ImpressionObserver {
  /** Watch one more card (cards added to the container are picked up by themselves). */
  observe(card: Element): void;
  /** Stop reporting; cards already counted stay counted. */
  disconnect(): void;
}

export interface Tracker {
  configure(options: TrackingOptions): void;
  trackProjectView(projectId: ProjectId, source?: ViewSource): Promise<ViewResult>;
  trackProjectClick(projectId: ProjectId, source: ClickSource, position?: number | null,
                    variant?: Variant | null): boolean;
  trackImpression(projectId: ProjectId, source: ClickSource, position?: number | null,
                  variant?: Variant | null): boolean;
  observeImpressions(container: Element, options: ImpressionOptions): ImpressionObserver;
  getViewSourceFromReferrer(referrer?: string): ViewSource;
  getClickSourceFromTab(tab: FeedTab | string): ClickSource;
  /** Send queued clicks and impressions now; resolves when acknowledged or given up. */
  flush(): Promise<void>;
  /** What pagehide does: hand queued and retry-waiting events to sendBeacon / keepalive fetch. */
  flushAtUnload(): void;
  pending(): { queued: number; retrying: number };
}

export const VIEW_SOURCES: readonly ViewSource[];
export const CLICK_SOURCES: readonly ClickSource[];
export const MAX_BATCH_SIZE: 50;
export const VARIANT_PATTERN: RegExp;
export const DEFAULT_VIEW_SOURCE_PATTERNS: Readonly<Record<'search' | 'profile' | 'explore', readonly RegExp[]>>;

export function configure(options: TrackingOptions): void;
/** Record a project page view now; the source defaults to getViewSourceFromReferrer(). */
export function trackProjectView(projectId: ProjectId, source?: ViewSource): Promise<ViewResult>;
/** The view source of a page reached from `referrer` (default document.referrer); 'embed' when framed. */
export function getViewSourceFromReferrer(referrer?: string): ViewSource;
/** Queue a click on a project card (position 0-based); false when nothing was queued: invalid
 *  input, a full queue, or a GPC / DNT signal with respectDoNotTrack. */
export function trackProjectClick(projectId: ProjectId, source: ClickSource, position?: number | null,
                                  variant?: Variant | null): boolean;
/** Queue one impression of a project card in a feed; false when nothing was queued (as clicks). */
export function trackImpression(projectId: ProjectId, source: ClickSource, position?: number | null,
                                variant?: Variant | null): boolean;
/** Report the cards of `container` that are actually seen (IntersectionObserver), batched. */
export function observeImpressions(container: Element, options: ImpressionOptions): ImpressionObserver;
/** The click source of a feed tab; unknown tabs give 'explore_for_you'. */
export function getClickSourceFromTab(tab: FeedTab | string): ClickSource;
export function flush(): Promise<void>;
export function createTracker(options?: TrackingOptions, environment?: TrackerEnvironment): Tracker;
