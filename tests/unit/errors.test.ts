import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../src/config/config.js';
import { errorText } from '../../src/errors.js';
import { GiteaError } from '../../src/gitea/errors.js';
import { PermanentError } from '../../src/scheduler/types.js';

describe('errorText', () => {
  it('is the message of an error, its name when the message is empty, the value of anything else', () => {
    expect(errorText(new ConfigError('PORT', 'an integer from 0 to 65535'))).toBe('PORT: an integer from 0 to 65535');
    expect(errorText(new TypeError(''))).toBe('TypeError');
    expect(errorText('plain')).toBe('plain');
    expect(errorText(42)).toBe('42');
    expect(errorText(undefined)).toBe('undefined');
  });

  it('reads errors from another realm (not instanceof Error) by their message', () => {
    expect(errorText({ name: 'SqliteError', message: 'database is locked', code: 'SQLITE_BUSY' })).toBe('database is locked');
  });

  it('keeps the cause chain, without repeating a cause the message already says', () => {
    const socket = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(errorText(new TypeError('fetch failed', { cause: socket }))).toBe('fetch failed: connect ECONNREFUSED 127.0.0.1:9');
    const gitea = new GiteaError({ message: 'GET /repos/a/b → 404: Not Found', method: 'GET', path: '/repos/a/b', status: 404, transient: false });
    expect(errorText(new PermanentError(gitea.message, { cause: gitea }))).toBe('GET /repos/a/b → 404: Not Found');
    const deep = new Error('a', { cause: new Error('b', { cause: new Error('c') }) });
    expect(errorText(deep)).toBe('a: b: c');
  });

  it('stops on a cause that points back at its error', () => {
    const loop = new Error('loop') as Error & { cause?: unknown };
    loop.cause = loop;
    expect(errorText(loop)).toBe('loop');
    const a = new Error('a') as Error & { cause?: unknown };
    a.cause = new Error('b', { cause: a });
    expect(errorText(a)).toBe('a: b');
  });

  it('names every address an AggregateError (connect to each address) failed on', () => {
    const error = new AggregateError([new Error('connect ECONNREFUSED ::1:3000'), new Error('connect ECONNREFUSED 127.0.0.1:3000')], '');
    expect(errorText(error)).toBe('connect ECONNREFUSED ::1:3000; connect ECONNREFUSED 127.0.0.1:3000');
  });

  it('is one line', () => {
    expect(errorText(new Error('first\n   second\r\nthird'))).toBe('first second third');
  });

  it('masks the secrets it is given, in the message and in the causes', () => {
    const error = new Error('token abcd1234 refused', { cause: new Error('sent abcd1234 and s3cr3t-hook') });
    const text = errorText(error, ['abcd1234', 's3cr3t-hook', 'ab']);
    expect(text).toBe('token [redacted] refused: sent [redacted] and [redacted]');
  });

  it('masks credentials it was not told about: URL user info, tokens in a query string, Authorization values', () => {
    expect(errorText(new Error('GET https://bot:hunter22@gitea.example.org/api/v1/user failed'))).toBe(
      'GET https://[redacted]@gitea.example.org/api/v1/user failed',
    );
    expect(errorText(new Error('GET /api/v1/user?access_token=0123456789abcdef&page=2 → 401'))).toBe(
      'GET /api/v1/user?access_token=[redacted]&page=2 → 401',
    );
    expect(errorText(new Error('request had Authorization: token 0123456789abcdef, refused'))).toBe(
      'request had Authorization: token [redacted], refused',
    );
  });
});
