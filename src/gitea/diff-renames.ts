/**
 * The renames a unified diff names: `rename from <old>` / `rename to <new>` in the extended header of
 * each file (git diff with rename detection, which Gitea's `GET …/pulls/{index}.diff` runs:
 * services/pull/patch.go DownloadDiffOrPatch → modules/git/repo_compare.go GetDiff, `git diff -p`).
 * Paths with special characters come C-quoted (core.quotePath): `"caf\303\251.md"`.
 *
 * Returns new name → old name.
 */
export function renamesFromDiff(diff: string): Map<string, string> {
  const out = new Map<string, string>();
  let from: string | undefined;
  for (const line of diff.split('\n')) {
    if (line.startsWith('diff --git ')) {
      from = undefined;
    } else if (line.startsWith('rename from ')) {
      from = unquoteGitPath(line.slice('rename from '.length));
    } else if (line.startsWith('rename to ') && from !== undefined) {
      out.set(unquoteGitPath(line.slice('rename to '.length)), from);
      from = undefined;
    }
  }
  return out;
}

const ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };

/** Git's C-style quoting undone (octal escapes are the UTF-8 bytes); an unquoted path is returned as is. */
export function unquoteGitPath(text: string): string {
  const t = text.replace(/\r$/, '');
  if (!(t.length >= 2 && t.startsWith('"') && t.endsWith('"'))) return t;
  const bytes: number[] = [];
  const body = t.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const next = body[i + 1] ?? '';
    const octal = /^[0-7]{3}/.exec(body.slice(i + 1));
    if (octal) {
      bytes.push(Number.parseInt(octal[0], 8));
      i += 3;
    } else if (next in ESCAPES) {
      bytes.push(ESCAPES[next] as number);
      i += 1;
    } else {
      bytes.push(92);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
