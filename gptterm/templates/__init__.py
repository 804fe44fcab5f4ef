"""Templates: a system prompt, a user prompt around ``{input}``, named variables, parameters, a schema.

Every face uses them: the one-shot command (``-t NAME -V VAR=VALUE``), the
REPL (``/template``), the app (the template picker) and ``gptterm templates``.
One module a job:

- ``template``: the template, its plain-substitution language and binding its variables
- ``parse``: a template from TOML text, checked when it is read (one line naming the file)
- ``library``: finding templates (built-in, the user's, by path) and listing them all
- ``fabric``: fabric pattern folders as templates, and as TOML to import
- ``create``: writing the user's templates (a starter, a copied built-in, imported patterns)

The names the faces use most are here too.
"""

from gptterm.templates.library import all_templates, load, read
from gptterm.templates.parse import parse
from gptterm.templates.template import Bound, Template, Variable

__all__ = ["Bound", "Template", "Variable", "all_templates", "load", "parse", "read"]
