"""The benchmark's 100 objects (20 ConfigMaps, 15 Secrets, 15 ServiceAccounts, 15 Services,
20 Deployments, 5 Roles, 5 RoleBindings, 5 Ingresses) as one YAML file: bench/objects.py OUT."""
import sys
docs = []
for i in range(20):
    docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  key: value-{i}\n  other: \"{i}\"\n")
for i in range(15):
    docs.append(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\ntype: Opaque\nstringData:\n  password: not-a-secret-{i}\n")
for i in range(15):
    docs.append(f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: account-{i}\n")
for i in range(15):
    docs.append(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: service-{i}\nspec:\n  selector:\n    app: app-{i}\n  ports:\n  - port: 80\n    targetPort: 8080\n")
for i in range(20):
    docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: app-{i}
  template:
    metadata:
      labels:
        app: app-{i}
    spec:
      containers:
      - name: app
        image: registry.example/app:{i}
        ports:
        - containerPort: 8080
""")
for i in range(5):
    docs.append(f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: role-{i}\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get, list]\n")
for i in range(5):
    docs.append(f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: binding-{i}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: role-{i}\nsubjects:\n- kind: ServiceAccount\n  name: account-{i}\n")
for i in range(5):
    docs.append(f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ingress-{i}\nspec:\n  rules:\n  - host: app-{i}.example.test\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: service-{i}\n            port:\n              number: 80\n")
assert len(docs) == 100
open(sys.argv[1], "w").write("---\n".join(docs))
