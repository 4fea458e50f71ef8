"""moto_server, applying one request at a time.

DynamoDB applies a conditional write to an item atomically: of two concurrent UpdateItems guarded by
the same condition, one fails. moto's backend has no locking and `moto_server` serves threads, so
both can pass the condition, and the local stack would show double counting that DynamoDB never
produces. This server runs moto's own application behind one lock (connections still accepted
concurrently), which gives the per-item guarantee the product relies on.

It also makes moto's transactions and update expressions cheaper without changing what they do
(`item_level_rollback`, `faster_update_validation`), accepts an EventBridge rule's EventPattern as a
JSON string in CloudFormation, as AWS does (`event_pattern_strings`), treats CommaDelimitedList parameters as CloudFormation does
(`list_parameters`), keeps log groups and managed policies through a stack update
(`stack_updates_keep_resources`), keeps a function's LoggingConfig and TracingConfig updates
(`function_configuration_updates`), and gives an AWS::Events::EventBus the resource policy its `Policy`
property holds (`event_bus_policies`).

Usage: python tools/moto_server.py HOST PORT
"""
import copy
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialized(app):
    lock = threading.Lock()

    def application(environ, start_response):
        with lock:
            # Build the whole response inside the lock: moto does its work while it is iterated.
            return list(app(environ, start_response))

    return application


def item_level_rollback():
    """moto makes TransactWriteItems all-or-nothing by deep-copying every table a transaction names
    before it runs, and putting the copies back if it fails: O(table) per transaction, so a load
    test slows down as its tables grow. A transaction changes only its own items, so backing up
    those items and restoring them on failure gives the same result at O(items)."""
    import copy as real_copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class TablesNotCopied:
        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else real_copy.deepcopy(value, memo)

    models.copy = TablesNotCopied
    original = models.DynamoDBBackend.transact_write_items

    def backups_of(backend, transact_items):
        backups = []
        for entry in transact_items:
            try:
                _, op = next(iter(entry.items()))
                table = backend.tables[op["TableName"]]
                key = op.get("Key") or op["Item"]
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, StopIteration, AttributeError):
                continue  # moto's own validation rejects the request before changing anything
            backups.append((table, hash_value, range_value, real_copy.deepcopy(table.get_item(hash_value, range_value))))
        return backups

    def transact_write_items(self, transact_items):
        backups = backups_of(self, transact_items)
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(backups):
                if item is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = item
                else:
                    table.items[hash_value] = item
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


def faster_update_validation():
    """moto validates an UpdateExpression by deep-copying its parsed tree and walking it with several
    processors; with the product's long expressions (a record's attributes, a rollup's histogram
    bins) that is most of a request's time (py-spy), and `make loadtest` runs at moto's rate. Same
    results, less work: the parser's tree holds only nodes and strings, so copying node by node is
    what deepcopy does; which processor takes a node class is looked up once, not at every node; and
    the clause count is checked once, at the root."""
    from moto.dynamodb.parsing import ast_nodes, validators

    Node = ast_nodes.Node
    node_classes = {}

    def is_a_node(value):
        kind = type(value)
        if kind not in node_classes:
            node_classes[kind] = isinstance(value, Node)
        return node_classes[kind]

    def copy_tree(node):
        if not is_a_node(node):
            return copy.deepcopy(node)
        copied = object.__new__(type(node))
        copied.__dict__.update(node.__dict__)
        if node.children is not None:
            copied.children = [copy_tree(child) for child in node.children]
            for child in copied.children:
                if is_a_node(child):
                    child.parent = copied
        return copied

    def validator_init(self, expression, expression_attribute_names, expression_attribute_values, item, table):
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.node_to_validate = copy_tree(expression)

    # isinstance against moto's abstract node classes goes through ABCMeta at every node; a class's
    # answer never changes, so it is looked up once per (processor, node class).
    processor_for = {}

    def processor_of(traverser, node):
        processors = traverser.__dict__.get("_processors")
        if processors is None:
            processors = traverser._processors = list(traverser._processing_map().items())
        key = (type(traverser), type(node))
        if key not in processor_for:
            matching = (index for index, (cls, _) in enumerate(processors) if isinstance(node, cls))
            processor_for[key] = next(matching, None)
        index = processor_for[key]
        return None if index is None else processors[index][1]

    def traverse_node_recursively(self, node, child_id=-1):
        if is_a_node(node):
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            processor = processor_of(self, node)
            if processor is not None:
                node = processor(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    # The clause counts of the whole expression bound those of its nested parts: checking the root
    # once (instead of every UpdateExpression node, each searching its subtree) accepts and refuses
    # the same expressions.
    def count_clauses_at_root(self, node):
        return self.verify_action_counts(node) if isinstance(node, ast_nodes.UpdateExpression) else node

    validators.Validator.__init__ = validator_init
    ast_nodes.DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively
    validators.ActionCountValidator.traverse = count_clauses_at_root


def event_pattern_strings():
    """CloudFormation takes AWS::Events::Rule EventPattern as an object or a JSON string
    (infra/template.yaml builds a string). moto json.dumps whatever it gets, so a string would
    become a quoted string and match nothing: parse it first."""
    import json

    from moto.events.models import Rule

    original = Rule.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, *args, **kwargs):
        properties = cloudformation_json.get("Properties", {})
        if isinstance(properties.get("EventPattern"), str):
            properties["EventPattern"] = json.loads(properties["EventPattern"])
        return original(cls, resource_name, cloudformation_json, *args, **kwargs)

    Rule.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def function_configuration_updates():
    """moto's UpdateFunctionConfiguration drops LoggingConfig and TracingConfig: keep them, so the
    deploy test can read back what `make deploy` set."""
    from moto.awslambda.models import LambdaFunction

    update, get = LambdaFunction.update_configuration, LambdaFunction.get_configuration

    def update_configuration(self, config_updates):
        if "LoggingConfig" in config_updates:
            self.logging_config = config_updates["LoggingConfig"]
        if "TracingConfig" in config_updates:
            self.tracing_config = config_updates["TracingConfig"]
        return update(self, config_updates)

    def get_configuration(self, *args, **kwargs):
        config = get(self, *args, **kwargs)
        if getattr(self, "logging_config", None):
            config["LoggingConfig"] = self.logging_config
        return config

    LambdaFunction.update_configuration = update_configuration
    LambdaFunction.get_configuration = get_configuration


def event_bus_policies():
    """AWS::Events::EventBus takes its resource policy as `Policy` (infra/template.yaml's central bus in
    organisation mode); moto 5.2.5 creates the bus and drops the policy, and on any update deletes the bus
    with its rules and creates it again. Apply the policy as PutPermission with a policy does, without the
    statements an `!If` left as AWS::NoValue (CloudFormation removes them), and update a bus of the same
    name in place: only a new Name replaces a bus. And a bus whose condition is false (one account) stays
    absent through a stack update that changes a parameter it names: moto would update a bus it never
    created."""
    import json

    from moto.cloudformation import parsing
    from moto.events.models import EventBus

    create, update = EventBus.create_from_cloudformation_json.__func__, EventBus.update_from_cloudformation_json.__func__

    def apply_policy(bus, cloudformation_json):
        policy = cloudformation_json.get("Properties", {}).get("Policy")
        bus.remove_statements()
        if policy:
            policy = json.loads(policy) if isinstance(policy, str) else dict(policy)
            policy["Statement"] = [statement for statement in policy.get("Statement", []) if statement is not None]
            if policy["Statement"]:
                bus.add_policy(policy)
        return bus

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bus = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        return apply_policy(bus, cloudformation_json)

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        if original_resource is None:  # its condition turned true (one account to central mode)
            return create_from_cloudformation_json(cls, new_resource_name, cloudformation_json, account_id, region_name)
        if cloudformation_json.get("Properties", {}).get("Name", new_resource_name) == original_resource.name:
            return apply_policy(original_resource, cloudformation_json)
        return update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)

    EventBus.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    EventBus.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)

    original_update_resource = parsing.parse_and_update_resource

    def parse_and_update_resource(logical_id, resource_json, resources_map, account_id, region_name):
        condition = resource_json.get("Condition")
        if (resource_json.get("Type") == EventBus.cloudformation_type() and condition
                and not resources_map.lazy_condition_map[condition] and resources_map[logical_id] is None):
            return None
        return original_update_resource(logical_id, resource_json, resources_map, account_id, region_name)

    parsing.parse_and_update_resource = parse_and_update_resource


def list_parameters():
    """moto splits a CommaDelimitedList parameter's given value into a list but leaves its Default a
    string, so `!Join [",", !Ref List]` of a default joins its characters; and DescribeStacks then
    shows a given list as Python's repr. CloudFormation splits both for Refs and shows the text."""
    from moto.cloudformation.parsing import ResourceMap

    original = ResourceMap.load_parameters

    def load_parameters(self):
        original(self)
        for name, slot in self._template.get("Parameters", {}).items():
            value = self.resolved_parameters.get(name)
            if slot.get("Type") == "CommaDelimitedList" and value is not None:
                listed = value if isinstance(value, list) else value.split(",")
                self._parsed_resources[name] = listed  # what Refs see
                self.resolved_parameters[name] = ",".join(listed)  # what DescribeStacks shows

    ResourceMap.load_parameters = load_parameters


def stack_updates_keep_resources():
    """moto has no CloudFormation update for some resource types (AWS::Logs::LogGroup,
    AWS::IAM::ManagedPolicy): a stack update forgets them, so their Refs in Outputs vanish. Keep
    the resource; for a log group, apply the new retention as CloudFormation would. And create the
    resources a stack update's new condition values bring in."""
    from moto.cloudformation import parsing
    from moto.logs.models import LogGroup

    original = parsing.parse_and_update_resource

    def parse_and_update_resource(logical_id, resource_json, resources_map, account_id, region_name):
        updated = original(logical_id, resource_json, resources_map, account_id, region_name)
        if updated is not None or logical_id not in resources_map._parsed_resources:
            return updated
        kept = resources_map[logical_id]
        if isinstance(kept, LogGroup):
            properties = parsing.clean_json(resource_json, resources_map).get("Properties", {})
            kept.retention_in_days = properties.get("RetentionInDays")
        return kept

    parsing.parse_and_update_resource = parse_and_update_resource

    # A resource whose Condition turns true in an update (same template, new parameter) is neither
    # "Add" nor "Modify" to moto, which would create it only when something reads it: create it now.
    original_update = parsing.ResourceMap.update

    def update(self, template, parameters=None):
        original_update(self, template, parameters)
        for logical_id, resource in self._resource_json_map.items():
            condition = resource.get("Condition")
            if condition and self.lazy_condition_map[condition] and logical_id not in self._parsed_resources:
                _ = self[logical_id]

    parsing.ResourceMap.update = update


def main(host, port):
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto_server does: moto builds some URLs from it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    item_level_rollback()
    faster_update_validation()
    event_pattern_strings()
    function_configuration_updates()
    list_parameters()
    stack_updates_keep_resources()
    event_bus_policies()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, serialized(app), threaded=True, use_reloader=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]))
