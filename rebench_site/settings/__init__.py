"""The site's settings, env-driven: every knob is an environment variable with a working default.

One module per subject (env.py holds the typed readers they share). Each module imports what it
reads from another (DEBUG, DATA_DIR, SITE_URL) and adds to what another defines in place (the API's
authentication classes, Celery's beat schedule), so the order of the imports below doesn't matter.
"""

# Star imports on purpose: Django reads every upper-case name of this module, and listing the
# ~250 settings again here would be a second list to keep in step with the modules.
from rebench_site.settings.api import *  # noqa: F403
from rebench_site.settings.core import *  # noqa: F403
from rebench_site.settings.grading import *  # noqa: F403
from rebench_site.settings.infrastructure import *  # noqa: F403
from rebench_site.settings.review import *  # noqa: F403
from rebench_site.settings.security import *  # noqa: F403
from rebench_site.settings.workstations import *  # noqa: F403
