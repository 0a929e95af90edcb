"""Customer-support assistant, on the local model (llama.cpp): answers from the product docs, the engineering wiki
and past tickets (customers' personal data redacted), and streams its answer.

    python -m agents.support_assistant "How do refunds work?"

Same as ``aquifer ask --agent support_assistant "..."``. It calls Aquifer's OpenAI-compatible gateway with the
official ``openai`` client (:func:`aquifer.ask.ask`); purpose, model and system prompt come from
``catalog/agents/support_assistant.yaml``.
"""

import sys

from agents._cli import run

if __name__ == "__main__":
    sys.exit(run("support_assistant", __doc__, stream=True))
