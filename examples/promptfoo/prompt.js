// prompt.js — what promptfoo's OpenAI provider sends for each test: no messages of its own
// (aigw renders the whole conversation from the template named in x-aigw-prompt) and the
// test's vars as the body's `variables`, which aigw renders the template with. The provider
// templates only the messages it sends; its headers and other fields are fixed per provider,
// so the variables ride in the body rather than in x-aigw-prompt-variables. The HTTP provider
// ignores this prompt: its body names the variables itself.
module.exports = ({ vars }) => ({
  prompt: [],
  config: { passthrough: { variables: { company: vars.company, question: vars.question } } },
});
