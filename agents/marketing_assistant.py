"""Marketing assistant, on an external model (``external_gpt``): the policy lets only public data reach a model
outside the organisation, so it sees the product docs and nothing else, and its answer says what was withheld.

    python -m agents.marketing_assistant "How do refunds work?"

Same as ``aquifer ask --agent marketing_assistant "..."``; purpose, model and system prompt come from
``catalog/agents/marketing_assistant.yaml``. In the demo the external model's endpoint is the local llama.cpp
server standing in for a provider (see ``catalog/models/external_gpt.yaml``).
"""

import sys

from agents._cli import run

if __name__ == "__main__":
    sys.exit(run("marketing_assistant", __doc__))
