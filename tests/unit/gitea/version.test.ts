import { describe, expect, it } from '@jest/globals';
import { parseGiteaVersion, versionAtLeast } from '../../../src/gitea/version.js';
import { retryAfterMs } from '../../../src/gitea/client.js';

describe('parseGiteaVersion', () => {
  it('reads Gitea release and dev versions', () => {
    expect(parseGiteaVersion('1.25.4')).toMatchObject({ major: 1, minor: 25, patch: 4 });
    expect(parseGiteaVersion('1.26.0+dev-123-gabcdef')).toMatchObject({ major: 1, minor: 26, patch: 0 });
    expect(parseGiteaVersion('v1.21.11')).toMatchObject({ major: 1, minor: 21, patch: 11 });
  });

  it("uses the Gitea API level Forgejo names after '+gitea-'", () => {
    const v = parseGiteaVersion('11.0.1+gitea-1.22.0');
    expect(v).toMatchObject({ major: 1, minor: 22, patch: 0, raw: '11.0.1+gitea-1.22.0' });
    expect(versionAtLeast(v!, 1, 24)).toBe(false);
  });

  it('returns null for what it cannot read', () => {
    expect(parseGiteaVersion('')).toBeNull();
    expect(parseGiteaVersion('development')).toBeNull();
  });

  it('compares on major.minor', () => {
    const v = parseGiteaVersion('1.24.0')!;
    expect(versionAtLeast(v, 1, 24)).toBe(true);
    expect(versionAtLeast(v, 1, 25)).toBe(false);
    expect(versionAtLeast(parseGiteaVersion('2.0.0')!, 1, 99)).toBe(true);
  });
});

describe('retryAfterMs', () => {
  it('reads delta-seconds', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(' 0 ')).toBe(0);
  });

  it('reads an HTTP date relative to now, never negative', () => {
    const now = Date.parse('2026-03-02T10:00:00Z');
    expect(retryAfterMs('Mon, 02 Mar 2026 10:00:07 GMT', now)).toBe(7000);
    expect(retryAfterMs('Mon, 02 Mar 2026 09:59:00 GMT', now)).toBe(0);
  });

  it('ignores missing or garbled values', () => {
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs('-5')).toBeUndefined();
  });
});
