"""HR case assistant, on the local model (llama.cpp): the only demo agent that may read HR case notes, with their
personal data, because its purpose is HR casework and the model runs on this host. It acts for an HR business
partner (``acts_for: user``), who sees the cases of their own region only (each note's ACL):

    python -m agents.hr_case_assistant --as amira.haddad "What happened in the overtime dispute case?"
    python -m agents.hr_case_assistant --as ben.okafor "What happened in the overtime dispute case?"

Same as ``aquifer ask --agent hr_case_assistant --as ... "..."``; purpose, model and system prompt come from
``catalog/agents/hr_case_assistant.yaml``; without ``--as``, the user's token is ``AQUIFER_USER_TOKEN``.
"""

import sys

from agents._cli import run

if __name__ == "__main__":
    sys.exit(run("hr_case_assistant", __doc__))
