import { verify } from '@octokit/webhooks-methods';
import { describe, expect, it } from '@jest/globals';
import { FIXTURES, FIXTURE_SECRET, fixtureDelivery, giteaJson, goQueryEscape, loadFixture } from '../../helpers/signing.js';

// The test helpers must sign exactly like Gitea, or every integration test would prove nothing.
describe('signing helpers', () => {
  it.each(FIXTURES)('reproduce the real signature and length of %s', (name) => {
    const fixture = loadFixture(name);
    const signed = fixtureDelivery(name, { id: fixture.headers['X-Gitea-Delivery'] });
    expect(signed.headers['X-Gitea-Signature']).toBe(fixture.headers['X-Gitea-Signature']);
    expect(signed.headers['X-Hub-Signature-256']).toBe(fixture.headers['X-Hub-Signature-256']);
    expect(signed.headers['Content-Length']).toBe(fixture.headers['Content-Length']);
    expect(signed.headers['X-Gitea-Delivery']).toBe(fixture.headers['X-Gitea-Delivery']);
  });

  it("escapes <, > and & the way Go's encoder does", async () => {
    const json = giteaJson({ title: 'a <b> & c' });
    expect(json).toBe('{\n  "title": "a \\u003cb\\u003e \\u0026 c"\n}');
    expect(JSON.parse(json)).toEqual({ title: 'a <b> & c' });
    const signed = fixtureDelivery('issues-opened', { mutate: (b) => (b.issue.title = '<script>&') });
    expect(signed.json).toContain('\\u003cscript\\u003e\\u0026');
    await expect(verify(FIXTURE_SECRET, signed.body.toString('utf8'), signed.headers['X-Hub-Signature-256']!)).resolves.toBe(true);
  });

  it('encodes a form body like url.Values.Encode and signs the JSON inside it', async () => {
    expect(goQueryEscape("a b+c/d!'()*~")).toBe('a+b%2Bc%2Fd%21%27%28%29%2A~');
    const signed = fixtureDelivery('issues-opened', { contentType: 'form' });
    const decoded = new URLSearchParams(signed.body.toString('utf8')).get('payload');
    expect(decoded).toBe(signed.json);
    await expect(verify(FIXTURE_SECRET, decoded!, signed.headers['X-Hub-Signature-256']!)).resolves.toBe(true);
  });
});
