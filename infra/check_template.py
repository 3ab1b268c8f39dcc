#!/usr/bin/env python3
"""Check template.yaml as CloudFormation receives it, after the SAM transform.

    python3 infra/check_template.py [TEMPLATE]   (default: template.yaml)

`cfn-lint` and `sam validate --lint` read the SAM template itself; the SAM transform
runs only inside CloudFormation, during `sam deploy`. What it adds can break a deploy
that every local check passed. This script runs the same transform (the
aws-sam-translator library, offline: a fixed region, no credentials, no IAM call) and
fails on:

- a dependency cycle among the translated resources (Ref, Fn::GetAtt, Fn::Sub's
  ${...}, DependsOn), naming each reference on the cycle;
- a function's HttpApi event whose route the API's DefinitionBody lacks (the transform
  adds such a route naming the function by !GetAtt, a cycle as soon as the function
  names the API), or a DefinitionBody route to a Lambda function that no event grants
  API Gateway the permission to invoke;
- an alarm that, with the parameters' defaults, tells no SNS topic;
- anything cfn-lint finds in the translated template.

Prints "TEMPLATE: ok ..." and exits 0, or prints each problem and exits 1.
"""

import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.public.parser import Parser
from samtranslator.public.translator import Translator
from samtranslator.yaml_helper import yaml_parse

# Any region works: the template names none, and the transform only needs one.
REGION = "us-east-1"
# What `sam deploy` puts in place of a local CodeUri once it has uploaded the code.
PACKAGED_CODE_URI = "s3://packaged-by-sam-deploy/code.zip"
# The pseudo parameters' values when deciding the template's conditions.
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::NoValue": None,
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::StackName": "labelport",
    "AWS::URLSuffix": "amazonaws.com",
}
ANY_METHOD = "x-amazon-apigateway-any-method"
LAMBDA_INTEGRATION = ":lambda:path/"


def main(argv):
    if len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[1] if len(argv) == 2 else "template.yaml")
    source = yaml_parse(path.read_text(encoding="utf-8"))
    parameters = parameter_values(source)
    problems = missing_routes(source)
    try:
        translated = translate(source, parameters)
    except InvalidDocumentException as error:
        causes = "\n  ".join(cause.message for cause in error.causes)
        problems.append(f"the SAM transform refuses the template:\n  {causes}")
    else:
        problems += dependency_cycles(translated)
        problems += silent_alarms(translated, parameters)
        problems += cfn_lint(translated, path)
    if problems:
        for problem in problems:
            print(f"{path}: {problem}\n")
        print(f"{path}: {len(problems)} problem(s) in the template CloudFormation would receive")
        return 1
    print(
        f"{path}: ok: {len(translated['Resources'])} resources after the SAM transform, no dependency"
        " cycle, every HttpApi route in its DefinitionBody, every alarm told, cfn-lint clean"
    )
    return 0


def parameter_values(template):
    """The defaults, and a placeholder of the right type for each parameter without one
    (those a deployment must answer: the transform does not check their patterns)."""
    values = {}
    for name, parameter in template.get("Parameters", {}).items():
        if "Default" in parameter:
            values[name] = parameter["Default"]
        elif parameter.get("Type") == "Number":
            values[name] = str(parameter.get("MinValue", 1))
        else:
            values[name] = f"placeholder-{name}"
    return values


def translate(source, parameters):
    template = copy.deepcopy(source)
    # sam deploy uploads local code first; the transform refuses a local path.
    global_function = template.get("Globals", {}).get("Function", {})
    if is_local(global_function.get("CodeUri")):
        global_function["CodeUri"] = PACKAGED_CODE_URI
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and is_local(properties.get("CodeUri")):
            properties["CodeUri"] = PACKAGED_CODE_URI
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        # A session with a region and no credentials: nothing here calls AWS.
        boto_session=boto3.session.Session(region_name=REGION),
    )
    return translator.translate(
        template,
        parameter_values=dict(parameters),
        # Offline: policies named by name stay unresolved rather than asking IAM (the
        # functions' roles name none).
        get_managed_policy_map=dict,
    )


def is_local(uri):
    return isinstance(uri, str) and not uri.startswith("s3://")


def missing_routes(template):
    """Routes an HttpApi event adds that its API's DefinitionBody lacks, and
    DefinitionBody routes to a function that no event lets API Gateway invoke."""
    problems = []
    resources = template["Resources"]
    event_routes = {}
    for function, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") != "HttpApi":
                continue
            properties = event.get("Properties", {})
            api = properties.get("ApiId", {})
            api = api.get("Ref") if isinstance(api, dict) else api
            body = resources.get(api, {}).get("Properties", {}).get("DefinitionBody")
            if not isinstance(body, dict):
                continue  # the transform writes the whole definition: nothing to miss
            method = properties.get("Method", "any").lower()
            method = ANY_METHOD if method == "any" else method
            route_path = properties.get("Path", "/$default")
            event_routes.setdefault(api, set()).add((method, route_path))
            if method not in (body.get("paths", {}).get(route_path) or {}):
                problems.append(
                    f"{function}'s HttpApi event {event_name} ({method.upper()} {route_path}) is missing"
                    f" from {api}'s DefinitionBody: the SAM transform would add it naming {function}"
                    f" by !GetAtt {function}.Arn (a dependency cycle when {function} references {api})."
                    f" Add the route to the DefinitionBody as the others are."
                )
    for api, routes in event_routes.items():
        body = resources[api]["Properties"]["DefinitionBody"]
        for route_path, operations in body.get("paths", {}).items():
            for method, operation in (operations or {}).items():
                if not isinstance(operation, dict) or (method, route_path) in routes:
                    continue
                integration = operation.get("x-amazon-apigateway-integration", {})
                if LAMBDA_INTEGRATION in json.dumps(integration.get("uri", "")):
                    problems.append(
                        f"{api}'s DefinitionBody routes {method.upper()} {route_path} to a Lambda function"
                        f" but no HttpApi event names it: API Gateway would have no permission to invoke"
                        f" the function. Add the event to the function's Events."
                    )
    return problems


def dependency_cycles(template):
    """Each cycle of references among resources, as CloudFormation would refuse it."""
    resources = template["Resources"]
    # needs[a][b]: where resource a references resource b (the first place found).
    needs = {}
    for name, resource in resources.items():
        edges = needs.setdefault(name, {})
        depends_on = resource.get("DependsOn", [])
        for other in [depends_on] if isinstance(depends_on, str) else depends_on:
            edges.setdefault(other, "DependsOn")
        for where, other in references(resource, ""):
            if other in resources:
                edges.setdefault(other, where)
    problems = []
    for component in strongly_connected(needs):
        cycle = cycle_within(component, needs)
        if cycle:
            steps = "\n".join(f"  {a} needs {b}: {needs[a][b]}" for a, b in zip(cycle, cycle[1:]))
            others = sorted(set(component) - set(cycle))
            tangled = f"\n  (also on cycles with these: {', '.join(others)})" if others else ""
            problems.append(
                f"dependency cycle {' -> '.join(cycle)}: CloudFormation refuses the stack"
                f" (\"Circular dependency between resources\"):\n{steps}{tangled}"
            )
    return problems


def references(value, where):
    """(where, resource-or-parameter name) for each reference in value."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from references(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        if len(value) == 1:
            (function, argument), = value.items()
            if function == "Ref" and isinstance(argument, str):
                yield f"{where} (Ref {argument})", argument
                return
            if function == "Fn::GetAtt":
                target = argument.split(".", 1)[0] if isinstance(argument, str) else argument[0]
                yield f"{where} (GetAtt {target})", target
                return
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text if isinstance(text, str) else ""):
                    target = name.split(".", 1)[0]
                    if target not in variables:
                        yield f"{where} (Sub ${{{name}}})", target
                for key, item in variables.items():
                    yield from references(item, f"{where}.{key}")
                return
        for key, item in value.items():
            step = key if re.fullmatch(r"[A-Za-z0-9_:-]+", key) else json.dumps(key)
            yield from references(item, f"{where}.{step}" if where else step)


def strongly_connected(graph):
    """Tarjan's strongly connected components, iteratively (templates can be large)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in graph:
                    continue
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph[successor])))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def cycle_within(component, graph):
    """A closed path through the component's first resource, or None if it has no cycle."""
    start = component[0]
    members = set(component)
    # Breadth-first from start back to start gives the shortest cycle through it.
    came_from = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in graph[node]:
                if successor == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = came_from[node]
                    return [start] + path[1:][::-1] + [start]
                if successor in members and successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    return None


def silent_alarms(template, parameters):
    """Alarms whose AlarmActions, with the parameters' defaults, name no topic."""
    values = {**PSEUDO_PARAMETERS, **parameters}
    conditions = template.get("Conditions", {})
    resources = template["Resources"]

    def holds(condition):
        return evaluate(conditions[condition], values, conditions) is True

    def exists(name):
        condition = resources[name].get("Condition")
        return condition is None or holds(condition)

    def tells(action):
        # An ARN a parameter gave, or a topic of the stack that exists with these values.
        if isinstance(action, str):
            return bool(action)
        target = action.get("Ref") if isinstance(action, dict) else None
        return target in resources and exists(target)

    problems = []
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm" or not exists(name):
            continue
        actions = resolve(resource.get("Properties", {}).get("AlarmActions", []), values, conditions)
        if not any(tells(action) for action in actions or []):
            problems.append(
                f"alarm {name} tells nobody when the parameters keep their defaults: its AlarmActions"
                f" must name a topic the stack has then (AlarmTopic unless AlarmTopicArn names one)"
            )
    return problems


def resolve(value, values, conditions):
    """value with Fn::If decided and parameters substituted; resources stay references."""
    if isinstance(value, list):
        resolved = [resolve(item, values, conditions) for item in value]
        return [item for item in resolved if item is not None]
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Fn::If":
            condition, when_true, when_false = argument
            chosen = when_true if evaluate(conditions[condition], values, conditions) else when_false
            return resolve(chosen, values, conditions)
        if function == "Ref" and argument in values:
            return values[argument]
    return value


def evaluate(condition, values, conditions):
    """A condition function, with parameter values (enough for the template's own)."""
    if not isinstance(condition, dict):
        return condition
    (function, argument), = condition.items()
    if function == "Condition":
        return evaluate(conditions[argument], values, conditions)
    if function == "Fn::Not":
        return not evaluate(argument[0], values, conditions)
    if function == "Fn::And":
        return all(evaluate(item, values, conditions) for item in argument)
    if function == "Fn::Or":
        return any(evaluate(item, values, conditions) for item in argument)
    if function == "Fn::Equals":
        left, right = (evaluate(item, values, conditions) for item in argument)
        return str(left) == str(right)
    if function == "Ref":
        return values[argument]
    if function == "Fn::Join":
        separator, items = argument
        items = evaluate(items, values, conditions)
        items = items.split(",") if isinstance(items, str) else items
        return separator.join(str(evaluate(item, values, conditions)) for item in items)
    raise ValueError(f"cannot evaluate {function} in a condition")


def cfn_lint(template, path):
    linter = shutil.which("cfn-lint")
    if linter is None:
        return ["cfn-lint is not on PATH (source infra/tools.sh)"]
    with tempfile.TemporaryDirectory() as directory:
        translated = Path(directory) / f"{path.stem}.translated.json"
        translated.write_text(json.dumps(template, indent=1), encoding="utf-8")
        run = subprocess.run([linter, str(translated)], capture_output=True, text=True, check=False)
    if run.returncode == 0:
        return []
    return [f"cfn-lint on the translated template:\n{run.stdout.strip()}{run.stderr.strip()}"]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
