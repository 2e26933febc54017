"""Runs a moto server (DynamoDB, SQS, Scheduler) for shipsync's local stack and tests.

Prints `MOTO_PORT=<port>` once it listens, then serves until its parent process exits, so a
test run or local stack that dies never leaves a server behind.

With `INITIAL_NO_AUTH_ACTION_COUNT=0` in its environment, moto enforces IAM from the first
request: every call must be signed by an IAM user's access key and allowed by its policies. Nobody
could then create the first user over HTTP, so the runner creates an administrator in-process
and prints `MOTO_ADMIN=<access key id>:<secret>` before the port. It also corrects where moto
5.2.1 checks otherwise than AWS (`authorise_transactions_per_item`, `check_dynamodb_resources`,
`sign_bodiless_requests_without_a_body`): the IAM tests rely on all three.
"""
import json
import logging
import os
import sys
import time

from moto.server import ThreadedMotoServer

ADMIN_USER = "shipsync-admin"


def create_admin() -> str:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user(region_name="us-east-1", user_name=ADMIN_USER)
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(ADMIN_USER, "everything", json.dumps(everything))
    key = iam.create_access_key(ADMIN_USER)
    return f"{key.access_key_id}:{key.secret_access_key}"


# The IAM action AWS checks for each kind of item in a transaction.
TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def authorise_transactions_per_item() -> None:
    """AWS has no `dynamodb:TransactWriteItems` (or `TransactGetItems`) permission: it authorises
    a transaction by the action of each item in it (PutItem, UpdateItem, DeleteItem,
    ConditionCheckItem, GetItem). moto 5.2.1 checks the operation's name instead, which no
    policy grants. This makes moto check what AWS checks, so a template that lacks, say,
    ConditionCheckItem fails the tests as it would fail in AWS."""
    from moto.iam.access_control import IAMRequestBase

    check = IAMRequestBase.check_action_permitted

    def check_per_item(self, resource: str) -> None:
        if self._action not in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
            return check(self, resource)
        items = json.loads(self._body or b"{}").get("TransactItems", [])
        actions = sorted({TRANSACTION_ITEM_ACTIONS.get(kind, f"dynamodb:{kind}") for item in items for kind in item})
        for action in actions:
            self._action = action
            check(self, resource)

    IAMRequestBase.check_action_permitted = check_per_item


def check_dynamodb_resources() -> None:
    """moto 5.2.1 authorises DynamoDB calls against the resource `*`, so a policy naming the table
    (as a deployed one does) would match nothing. This names the resource as AWS does: the
    table's ARN, or the index's (`.../table/T/index/I`) for a query or scan of an index, so a
    policy without `${Table.Arn}/index/*` fails an index query here as in AWS. A batch or
    transaction is checked against its first table (shipsync has one)."""
    from moto.dynamodb.responses import DynamoHandler

    def determine_resource(self) -> str:
        try:
            body = json.loads(self.raw_body or b"{}")
        except ValueError:
            return "*"
        transaction_tables = (step.get("TableName") for item in body.get("TransactItems", []) for step in item.values())
        table = body.get("TableName") or next(iter(body.get("RequestItems", {})), None) or next(transaction_tables, None)
        if not table:
            return "*"
        arn = f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"
        return f"{arn}/index/{body['IndexName']}" if body.get("IndexName") else arn

    DynamoHandler._determine_resource = determine_resource


def sign_bodiless_requests_without_a_body() -> None:
    """moto 5.2.1 recomputes a GET's or DELETE's signature with its query parameters as the body, so every signed GET or DELETE with a query string (Scheduler's
    ListSchedules, GetSchedule, DeleteSchedule) fails with SignatureDoesNotMatch. Such a request
    was signed over an empty body: check it so."""
    from moto.iam.access_control import IAMRequestBase

    create = IAMRequestBase._create_aws_request

    def create_with_the_body_as_sent(self):
        # A form POST (IAM, SQS's query protocol) arrives parsed, its body in `_data`: keep it.
        if not self._body and self._method in ("GET", "HEAD", "DELETE"):
            self._data = b""
        return create(self)

    IAMRequestBase._create_aws_request = create_with_the_body_as_sent


def serialise_conditional_writes() -> None:
    """DynamoDB applies a conditional write or a transaction atomically; moto's threaded server
    does not (two racing transactions can both pass their conditions, and SQS's queue creation
    can fail with "dictionary changed size during iteration"). One lock around each write makes
    moto as atomic as the services it stands in for, so the race tests test shipsync."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs.models import SQSBackend

    lock = threading.RLock()

    def serialised(method):
        @functools.wraps(method)
        def locked(*args, **kwargs):
            with lock:
                return method(*args, **kwargs)

        return locked

    for name in DYNAMODB_WRITES:
        setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))
    SQSBackend.create_queue = serialised(SQSBackend.create_queue)


# Every DynamoDBBackend method that changes items, indexes or tables.
DYNAMODB_WRITES = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "create_table",
    "delete_table",
    "update_table",
    "restore_table_from_backup",
    "restore_table_to_point_in_time",
    "import_table",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)


def remember_sort_orders() -> None:
    """For the benchmark's searches over 100,000 shipments (`SHIPSYNC_MOTO_REMEMBER_SORT_ORDERS=1`):
    moto 5.2.1 sorts the whole table, then the queried partition, on every Query, about 4 s a
    call at 100,000 items, so a search that takes fifty Query pages would take minutes. This
    keeps each sort's result until the next write, changing no answer: it speeds moto up, and
    what a call reads (what the benchmark measures) is the same. Off in the tests, which keep
    moto as it is."""
    import functools

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    generation = [0]

    def bumping(method):
        # Before and after: a sort that ran while a write did is kept under a stale generation.
        @functools.wraps(method)
        def write(*args, **kwargs):
            generation[0] += 1
            try:
                return method(*args, **kwargs)
            finally:
                generation[0] += 1

        return write

    for name in DYNAMODB_WRITES:
        if hasattr(DynamoDBBackend, name):
            setattr(DynamoDBBackend, name, bumping(getattr(DynamoDBBackend, name)))

    sorts: dict = {}

    def remembered(key, sort):
        if key not in sorts:
            if len(sorts) >= 32:
                sorts.clear()
            sorts[key] = sort()
        # A copy: a query reverses its list in place for a descending read.
        return list(sorts[key])

    all_items = Table.all_items
    sorted_items = Table.sorted_items

    def remembered_all_items(self):
        return remembered((generation[0], id(self)), lambda: all_items(self))

    def remembered_sorted_items(self, hash_key_attrs, range_key_attrs, items):
        key = (generation[0], id(self), tuple(hash_key_attrs), tuple(range_key_attrs), tuple(map(id, items)))
        return remembered(key, lambda: sorted_items(self, hash_key_attrs, range_key_attrs, list(items)))

    Table.all_items = remembered_all_items
    Table.sorted_items = remembered_sorted_items


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    parent = os.getppid()
    # One log line per request would drown the output of the tests and the local stack.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    serialise_conditional_writes()
    if os.environ.get("SHIPSYNC_MOTO_REMEMBER_SORT_ORDERS") == "1":
        remember_sort_orders()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    if os.environ.get("INITIAL_NO_AUTH_ACTION_COUNT") == "0":
        authorise_transactions_per_item()
        check_dynamodb_resources()
        sign_bodiless_requests_without_a_body()
        print(f"MOTO_ADMIN={create_admin()}", flush=True)
    print(f"MOTO_PORT={server.get_host_and_port()[1]}", flush=True)
    while os.getppid() == parent:
        time.sleep(0.5)
    server.stop()


if __name__ == "__main__":
    main()
