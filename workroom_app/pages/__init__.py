"""Every page module, imported so its @app_page registration runs.

To add a page: name its route in workroom_app/routes.py, create pages/<name>.py with one
function decorated by `app_page(ROUTE, ...)` (components/layout.py) and add its module to the
import below.
"""

from workroom_app.pages import home, index, login, signup, usage  # noqa: F401
from workroom_app.pages import checkout, plans, subscription  # noqa: F401
from workroom_app.pages import generate  # noqa: F401
from workroom_app.pages import staff  # noqa: F401
from workroom_app.pages import staff_overview, staff_queues  # noqa: F401
from workroom_app.pages import credits  # noqa: F401
from workroom_app.pages import staff_reports  # noqa: F401
from workroom_app.pages import staff_figure_rows  # noqa: F401
