import { describe, expect, it } from '@jest/globals';
import { COMMAND_LIMITS, parseCommands } from '../../../src/triage/commands.js';

describe('parseCommands', () => {
  it.each([
    ['/label kind/bug', [{ add: ['kind/bug'], remove: [] }]],
    ['/label kind/bug -area/docs +priority/high', [{ add: ['kind/bug', 'priority/high'], remove: ['area/docs'] }]],
    ['/label "good first issue" -"help wanted"', [{ add: ['good first issue'], remove: ['help wanted'] }]],
    ["/label won't-fix 'quoted'", [{ add: ["won't-fix", "'quoted'"], remove: [] }]], // only double quotes quote
    ['/LABEL Kind/Bug', [{ add: ['Kind/Bug'], remove: [] }]], // keyword in any case, names keep theirs
    ['/Label kind/bug', [{ add: ['kind/bug'], remove: [] }]],
    ['  /label indented-a-little', [{ add: ['indented-a-little'], remove: [] }]],
    ['Thanks!\n/label kind/bug\nand more text', [{ add: ['kind/bug'], remove: [] }]],
    ['/label a\n/label -b', [{ add: ['a'], remove: [] }, { add: [], remove: ['b'] }]],
    ['/label a -a', [{ add: [], remove: ['a'] }]], // the last mention decides
    ['/label -a a', [{ add: ['a'], remove: [] }]],
    ['/label a a a', [{ add: ['a'], remove: [] }]],
    ['/label\ttab/separated\tother', [{ add: ['tab/separated', 'other'], remove: [] }]],
    ['/label', []], // nothing asked
    ['/label - +', []],
    ['/label ""', []],
    ['/labels kind/bug', []], // another word
    ['/labelkind/bug', []],
    ['text /label kind/bug', []], // not at the start of a line
    ['/label "unterminated kind/bug', []],
    ['/label a "unterminated', [{ add: ['a'], remove: [] }]],
  ])('%j → %j', (body, expected) => {
    expect(parseCommands(body)).toEqual(expected);
  });

  it.each([
    ['a fenced code block', '```\n/label kind/bug\n```'],
    ['a tilde fence', '~~~\n/label kind/bug\n~~~'],
    ['an unclosed fence', 'see:\n\n```\n/label kind/bug'],
    ['an indented code block', 'Example:\n\n    /label kind/bug\n'],
    ['inline code', '`/label kind/bug`'],
    ['inline code across lines', 'run `x\n/label kind/bug` now'],
    ['double-backtick code', '``/label `kind/bug` ``'],
    ['a block quote', '> /label kind/bug'],
    ['a quote’s lazy continuation', '> someone wrote\n/label kind/bug'],
    ['a nested quote', '> > /label kind/bug'],
    ['an HTML comment', '<!-- /label kind/bug -->'],
    ['a multi-line HTML comment', '<!--\n/label kind/bug\n-->'],
    ['an inline multi-line comment', 'text <!-- hidden\n/label kind/bug\n--> visible'],
    ['an unclosed comment', 'text <!-- never closed\n/label kind/bug'],
    ['an HTML block', '<details>\n/label kind/bug\n</details>'],
    ['a list item', '- /label kind/bug'],
    ['a heading', '## /label kind/bug'],
  ])('ignores a command inside %s', (_where, body) => {
    expect(parseCommands(body)).toEqual([]);
  });

  it('reads the commands around code, quotes and comments', () => {
    const body = [
      '> /label quoted',
      '',
      '/label kind/bug',
      '```',
      '/label in-code',
      '```',
      '<!-- /label commented -->',
      '/label -area/docs `-not-this`',
      'A line with `code` and then',
      '/label "needs info"',
    ].join('\n');
    expect(parseCommands(body)).toEqual([
      { add: ['kind/bug'], remove: [] },
      { add: [], remove: ['area/docs'] },
      { add: ['needs info'], remove: [] },
    ]);
  });

  it('takes an escaped backtick as text, not as code', () => {
    expect(parseCommands('\\`/label is not code\n/label a')).toEqual([{ add: ['a'], remove: [] }]);
  });

  it('takes a backtick without a closing run as text', () => {
    expect(parseCommands('a lone ` here\n/label a')).toEqual([{ add: ['a'], remove: [] }]);
  });

  it(`takes at most ${COMMAND_LIMITS.maxCommands} commands per comment and ${COMMAND_LIMITS.maxLabelsPerCommand} labels per command`, () => {
    const many = Array.from({ length: 30 }, (_, i) => `/label l${i}`).join('\n');
    expect(parseCommands(many)).toHaveLength(COMMAND_LIMITS.maxCommands);
    const wide = `/label ${Array.from({ length: 80 }, (_, i) => `l${i}`).join(' ')}`;
    const [command] = parseCommands(wide);
    expect(command?.add).toHaveLength(COMMAND_LIMITS.maxLabelsPerCommand);
    expect(command?.add[49]).toBe('l49');
  });

  it('reads at most maxCommentLength characters', () => {
    const body = `${'x'.repeat(COMMAND_LIMITS.maxCommentLength)}\n/label late`;
    expect(parseCommands(body)).toEqual([]);
  });

  it('handles hostile comments at once', () => {
    expect(parseCommands('`'.repeat(60_000))).toEqual([]);
    expect(parseCommands(Array.from({ length: 1500 }, (_, i) => '`'.repeat((i % 40) + 1)).join(' ') + '\n/label x')).toEqual([
      { add: ['x'], remove: [] },
    ]);
    expect(parseCommands('<!--'.repeat(20_000))).toEqual([]);
  });
});
