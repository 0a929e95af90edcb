"""HR case assistant, on the local model (llama.cpp): the only demo agent that may read HR case notes, with their
personal data, because its purpose is HR casework and the model runs on this host.

    python -m agents.hr_case_assistant "What happened in the overtime dispute case?"

Same as ``aquifer ask --agent hr_case_assistant "..."``; purpose, model and system prompt come from
``catalog/agents/hr_case_assistant.yaml``.
"""

import sys

from agents._cli import run

if __name__ == "__main__":
    sys.exit(run("hr_case_assistant", __doc__))
