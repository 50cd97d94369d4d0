/** A Gitea API version, as far as the client needs it to choose between endpoints. */
export interface GiteaVersion {
  major: number;
  minor: number;
  patch: number;
  /** What `GET /version` answered, unchanged. */
  raw: string;
}

/**
 * Parses `GET /api/v1/version`. Gitea answers `1.25.4` (dev builds `1.26.0+dev-12-gabc`); Forgejo answers
 * its own version with the Gitea API level it keeps after a `+gitea-` marker (`11.0.1+gitea-1.22.0`):
 * that marker, when present, is the version that decides which endpoints exist. `null` when unparsable.
 */
export function parseGiteaVersion(raw: string): GiteaVersion | null {
  const text = raw.trim().replace(/^v/i, '');
  const compat = /\+gitea-(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  const m = compat ?? /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), raw };
}

/** True when `v` is at least `major.minor`. */
export function versionAtLeast(v: GiteaVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** True when `v` is at least `major.minor.patch`. */
export function versionAtLeastPatch(v: GiteaVersion, major: number, minor: number, patch: number): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}
