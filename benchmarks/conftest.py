from tests.conftest import (  # noqa: F401  (fixtures re-used by the benchmarks)
    _isolated,
    postgres_server_url,
    postgres_url,
    sqlite_url,
)
