"""Registration of the built-in rules (private). A new rule joins the registry here."""

from spectheory._registry import Rule, register
from spectheory.drafts import IID
from spectheory.verify import SINGLE

register(Rule("single", IID, SINGLE, fixed_n=1, description="maximal coupling, one draft (Leviathan et al. 2023)"))
