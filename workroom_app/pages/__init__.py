"""Every page module, imported so its @app_page registration runs.

To add a page: name its route in workroom_app/routes.py, create pages/<name>.py with one
function decorated by `app_page(ROUTE, ...)` (components/layout.py) and add its module to the
import below.
"""

from workroom_app.pages import (  # noqa: F401  # noqa: F401  # noqa: F401
    checkout,
    credits,  # noqa: F401
    generate,  # noqa: F401
    home,
    index,
    login,
    plans,
    signup,
    staff,  # noqa: F401
    staff_figure_rows,  # noqa: F401
    staff_overview,
    staff_queues,
    staff_reports,  # noqa: F401
    subscription,
    usage,
)
