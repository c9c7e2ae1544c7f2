import Testing
@testable import CorralProfile

@Suite struct ProfileErrorTests {
    // MARK: - Formatting

    @Test func descriptionWithLineAndHint() {
        let error = ProfileError(file: "profiles/x.yaml", line: 12, keyPath: "filesystem.write[1]",
                                 message: "unknown key `wirte`", hint: "did you mean `write`?")
        #expect(error.description == """
            profiles/x.yaml:12: filesystem.write[1]: unknown key `wirte`
              hint: did you mean `write`?
            """)
        #expect(error.location == ManifestLocation(file: "profiles/x.yaml", line: 12, keyPath: "filesystem.write[1]"))
    }

    @Test func descriptionWithoutLineOrHint() {
        let error = ProfileError(file: "profiles/x.yaml", line: nil, keyPath: "goal", message: "missing")
        #expect(error.description == "profiles/x.yaml: goal: missing")
        #expect(error.location == nil)
    }

    @Test func emptyKeyPathNamesTheDocument() {
        let error = ProfileError(file: "x.json", line: 3, keyPath: "", message: "bad")
        #expect(error.description == "x.json:3: (document): bad")
    }

    @Test func errorsCarryTheirFields() {
        #expect(throws: ProfileError(file: "p.yaml", line: 2, keyPath: "landlock",
                                     message: "unknown landlock mode `strict`",
                                     hint: "use required or best-effort")) {
            try Manifest.load("goal: { id: a }\nlandlock: strict\n", file: "p.yaml")
        }
    }

    @Test func fixtureContradictionNamesBothKeys() throws {
        let text = try Manifest.fixture("contradiction.yaml")
        #expect(Manifest.failure(text, file: "profiles/contradiction.yaml") == """
            profiles/contradiction.yaml:9: filesystem.deny[0]: "/srv/agents/profiles/cache" is also filesystem.write[1] (line 7); a path cannot be both writable and denied
              hint: remove one; deny is for paths inside an allowed tree, not the tree itself
            """)
    }

    @Test func designExampleStopsAtItsFirstUnsupportedFeature() throws {
        let text = try Manifest.fixture("design-example.yaml")
        #expect(Manifest.failure(text, file: "profiles/design-example.yaml") == """
            profiles/design-example.yaml:14: filesystem.deny[1]: patterns are not supported in filesystem.deny yet
              hint: write the path literally; only filesystem.exec accepts `*`, `?` and `[`
            """)
    }

    // MARK: - Document, YAML and version

    static let documentCases: [BadManifest] = [
        BadManifest(name: "empty file", yaml: "", expected: """
            profiles/x.yaml: (document): the manifest is empty
              hint: start with `version: 1` and `goal: { id: my-goal }`
            """),
        BadManifest(name: "only comments", yaml: "# nothing yet\n", expected: """
            profiles/x.yaml: (document): the manifest is empty
              hint: start with `version: 1` and `goal: { id: my-goal }`
            """),
        BadManifest(name: "top level is a list", yaml: "- goal\n- run\n", expected: """
            profiles/x.yaml:1: (document): expected a mapping at the top level, found a list
            """),
        BadManifest(name: "top level is a string", yaml: "just some words\n", expected: """
            profiles/x.yaml:1: (document): expected a mapping at the top level, found a string
            """),
        BadManifest(name: "YAML indentation error", yaml: """
            goal:
              id: a
               intent: b
            """, expected: """
            profiles/x.yaml:3: (document): invalid YAML: mapping values are not allowed in this context
              hint: check the indentation and quoting near this line
            """),
        BadManifest(name: "YAML unclosed flow list", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr, /lib
            landlock: required
            """, expected: """
            profiles/x.yaml:4: (document): invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence that starts on line 3)
              hint: check the indentation and quoting near this line
            """),
        BadManifest(name: "duplicate top-level key", yaml: """
            goal: { id: a }
            landlock: required
            goal: { id: b }
            """, expected: """
            profiles/x.yaml:3: goal: duplicate key `goal`; it is first given on line 1
              hint: give each key once
            """),
        BadManifest(name: "duplicate nested key", yaml: """
            goal: { id: a }
            filesystem:
              write: [./out]
              read: [/usr]
              write: [./tmp]
            """, expected: """
            profiles/x.yaml:5: filesystem.write: duplicate key `write`; it is first given on line 3
              hint: give each key once
            """),
        BadManifest(name: "key given three times", yaml: """
            goal: { id: a }
            landlock: required
            landlock: best-effort
            landlock: required
            """, expected: """
            profiles/x.yaml:3: landlock: duplicate key `landlock`; it is first given on line 2
              hint: give each key once
            """),
        BadManifest(name: "duplicate key in JSON", yaml: """
            {
              "goal": {"id": "a", "id": "b"}
            }
            """, expected: """
            profiles/x.yaml:2: goal.id: duplicate key `id`; it is first given on line 2
              hint: give each key once
            """),
        BadManifest(name: "unsupported version", yaml: "version: 2\ngoal: { id: a }\n", expected: """
            profiles/x.yaml:1: version: unsupported version 2; this Corral reads version 1
            """),
        BadManifest(name: "version is checked before other keys", yaml: """
            goal: { id: a }
            whatever: 1
            version: 3
            """, expected: """
            profiles/x.yaml:3: version: unsupported version 3; this Corral reads version 1
            """),
        BadManifest(name: "version of the wrong type", yaml: "version: [1]\ngoal: { id: a }\n", expected: """
            profiles/x.yaml:1: version: expected a version number, found a list
            """),
        BadManifest(name: "top-level key misspelt", yaml: "goal: { id: a }\nfilesytem: {}\n", expected: """
            profiles/x.yaml:2: filesytem: unknown key `filesytem`
              hint: did you mean `filesystem`?
            """),
        BadManifest(name: "top-level key unknown", yaml: "goal: { id: a }\nmounts: []\n", expected: """
            profiles/x.yaml:2: mounts: unknown key `mounts`
              hint: expected one of: version, goal, run, filesystem, network, limits, monitor, syscalls, landlock, approval, audit, on_violation
            """),
        BadManifest(name: "approval: unknown commit mode", yaml: """
            goal: { id: a }
            approval:
              commit: later
            """, expected: """
            profiles/x.yaml:3: approval.commit: unknown commit mode `later`
              hint: use auto (commit a clean run), ask (keep it pending), never (dry run) or direct (no staging)
            """),
        BadManifest(name: "approval: misspelt commit mode", yaml: "goal: { id: a }\napproval: { commit: aks }\n", expected: """
            profiles/x.yaml:2: approval.commit: unknown commit mode `aks`
              hint: did you mean `ask`?
            """),
        BadManifest(name: "approval: a key of the approval issue", yaml: """
            goal: { id: a }
            approval:
              commit: ask
              approver: tty
            """, expected: """
            profiles/x.yaml:4: approval.approver: `approval.approver` is not supported yet by this Corral
              hint: remove it; this Corral would not act on it
            """),
        BadManifest(name: "audit: unknown key", yaml: "goal: { id: a }\naudit: { path: /tmp/x }\n", expected: """
            profiles/x.yaml:2: audit.path: unknown key `path`
              hint: expected one of: log
            """),
        BadManifest(name: "on_violation: unknown action", yaml: "goal: { id: a }\non_violation: undo\n", expected: """
            profiles/x.yaml:2: on_violation: unknown action `undo`
              hint: alert (an event), pause (freeze the run), kill (end it) or rollback (end it, discard its writes)
            """),
        BadManifest(name: "later top-level key: invariants", yaml: "goal: { id: a }\ninvariants: []\n",
                    expected: """
            profiles/x.yaml:2: invariants: `invariants` is not supported yet by this Corral
              hint: remove it; this Corral would not act on it
            """),
    ]

    @Test(arguments: documentCases)
    func documentErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - goal

    static let goalCases: [BadManifest] = [
        BadManifest(name: "missing goal", yaml: "version: 1\nlandlock: required\n", expected: """
            profiles/x.yaml:1: goal: missing required key `goal`
              hint: add `goal: { id: my-goal }`
            """),
        BadManifest(name: "goal is a string", yaml: "goal: weekly\n", expected: """
            profiles/x.yaml:1: goal: expected a mapping, found a string
            """),
        BadManifest(name: "missing id", yaml: "goal:\n  intent: draft the report\n", expected: """
            profiles/x.yaml:1: goal.id: missing required key `id`
              hint: add a name made of a-z, 0-9 and -, such as `id: weekly-report`
            """),
        BadManifest(name: "id with capitals and underscore", yaml: "goal:\n  id: Weekly_Report\n", expected: """
            profiles/x.yaml:2: goal.id: goal id "Weekly_Report" may only use a-z, 0-9 and -
              hint: it becomes the sandbox's hostname; try "weekly-report"
            """),
        BadManifest(name: "id with nothing to keep", yaml: "goal:\n  id: été\n", expected: """
            profiles/x.yaml:2: goal.id: goal id "été" may only use a-z, 0-9 and -
              hint: it becomes the sandbox's hostname; try "t"
            """),
        BadManifest(name: "id of symbols only", yaml: "goal:\n  id: \"@@\"\n", expected: """
            profiles/x.yaml:2: goal.id: goal id "@@" may only use a-z, 0-9 and -
              hint: it becomes the sandbox's hostname; use a-z, 0-9 and -
            """),
        BadManifest(name: "id of 64 characters", yaml: "goal: { id: \(String(repeating: "a", count: 64)) }\n",
                    expected: """
            profiles/x.yaml:1: goal.id: goal id is 64 characters long; at most 63 are allowed
              hint: it becomes the sandbox's hostname, which is limited to 63 characters
            """),
        BadManifest(name: "empty id", yaml: "goal: { id: \"\" }\n", expected: """
            profiles/x.yaml:1: goal.id: the goal id is empty
              hint: use a-z, 0-9 and -, such as `weekly-report`
            """),
        BadManifest(name: "null id", yaml: "goal: { id: ~ }\n", expected: """
            profiles/x.yaml:1: goal.id: expected a string, found null
            """),
        BadManifest(name: "goal key misspelt", yaml: "goal:\n  id: a\n  intnet: draft\n", expected: """
            profiles/x.yaml:3: goal.intnet: unknown key `intnet`
              hint: did you mean `intent`?
            """),
        BadManifest(name: "intent is a list", yaml: "goal:\n  id: a\n  intent: [draft, report]\n", expected: """
            profiles/x.yaml:3: goal.intent: expected a string, found a list
            """),
    ]

    @Test(arguments: goalCases)
    func goalErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - run

    static let runCases: [BadManifest] = [
        BadManifest(name: "command as one string", yaml: """
            goal: { id: a }
            run:
              command: python3 report.py
            """, expected: """
            profiles/x.yaml:3: run.command: expected a list of strings, found a string
              hint: write it as a list: [python3, report.py]
            """),
        BadManifest(name: "command item is a mapping", yaml: """
            goal: { id: a }
            run:
              command:
                - python3
                - { script: report.py }
            """, expected: """
            profiles/x.yaml:5: run.command[1]: expected a string, found a mapping
            """),
        BadManifest(name: "empty program name", yaml: "goal: { id: a }\nrun: { command: [\"\", x] }\n", expected: """
            profiles/x.yaml:2: run.command[0]: the program name is empty
              hint: name the program to run first
            """),
        BadManifest(name: "run key misspelt", yaml: "goal: { id: a }\nrun:\n  workdri: ./work\n", expected: """
            profiles/x.yaml:3: run.workdri: unknown key `workdri`
              hint: did you mean `workdir`?
            """),
        BadManifest(name: "workdir pattern", yaml: "goal: { id: a }\nrun: { workdir: ./out/* }\n", expected: """
            profiles/x.yaml:2: run.workdir: patterns are not supported in run.workdir yet
              hint: write the path literally; only filesystem.exec accepts `*`, `?` and `[`
            """),
        BadManifest(name: "workdir is a list", yaml: "goal: { id: a }\nrun: { workdir: [./a] }\n", expected: """
            profiles/x.yaml:2: run.workdir: expected a path, found a list
            """),
        BadManifest(name: "workdir under ~ without a home", yaml: "goal: { id: a }\nrun: { workdir: ~/src }\n",
                    expected: """
            profiles/x.yaml:2: run.workdir: cannot resolve "~/src": no home folder is known
              hint: write the absolute path, or set HOME
            """, home: nil),
    ]

    @Test(arguments: runCases)
    func runErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - run.env

    static let envCases: [BadManifest] = [
        BadManifest(name: "pass as one string", yaml: """
            goal: { id: a }
            run:
              env:
                pass: LANG
            """, expected: """
            profiles/x.yaml:4: run.env.pass: expected a list of variable names, found a string
              hint: write a list, even for one name: [LANG]
            """),
        BadManifest(name: "name starting with a digit", yaml: "goal: { id: a }\nrun: { env: { pass: [1LANG] } }\n",
                    expected: """
            profiles/x.yaml:2: run.env.pass[0]: `1LANG` is not a valid variable name
              hint: use letters, digits and _, not starting with a digit
            """),
        BadManifest(name: "set name with a dash", yaml: """
            goal: { id: a }
            run:
              env:
                set:
                  MY-VAR: x
            """, expected: """
            profiles/x.yaml:5: run.env.set.MY-VAR: `MY-VAR` is not a valid variable name
              hint: use letters, digits and _, not starting with a digit
            """),
        BadManifest(name: "set value null", yaml: """
            goal: { id: a }
            run:
              env:
                set:
                  EMPTY:
            """, expected: """
            profiles/x.yaml:5: run.env.set.EMPTY: expected a string or number, found null
              hint: write EMPTY: "" for an empty value
            """),
        BadManifest(name: "set value is a list", yaml: "goal: { id: a }\nrun: { env: { set: { PATHS: [a, b] } } }\n",
                    expected: """
            profiles/x.yaml:2: run.env.set.PATHS: expected a string or number, found a list
            """),
        BadManifest(name: "set as a list", yaml: "goal: { id: a }\nrun: { env: { set: [A=1] } }\n", expected: """
            profiles/x.yaml:2: run.env.set: expected a mapping of NAME: value, found a list
              hint: write `set: { NAME: value }`
            """),
        BadManifest(name: "name passed twice", yaml: """
            goal: { id: a }
            run:
              env:
                pass:
                  - LANG
                  - TZ
                  - LANG
            """, expected: """
            profiles/x.yaml:7: run.env.pass[2]: `LANG` is listed twice; first at run.env.pass[0] (line 5)
              hint: list each variable once
            """),
        BadManifest(name: "passed and secret", yaml: """
            goal: { id: a }
            run:
              env:
                pass: [LANG, TOKEN]
                secrets: [TOKEN]
            """, expected: """
            profiles/x.yaml:5: run.env.secrets[0]: `TOKEN` is also run.env.pass[1] (line 4); a variable is either passed, set or secret
              hint: keep it in one place; secrets are passed like pass but never shown in output
            """),
        BadManifest(name: "set and passed", yaml: """
            goal: { id: a }
            run:
              env:
                set:
                  TZ: UTC
                pass: [TZ]
            """, expected: """
            profiles/x.yaml:6: run.env.pass[0]: `TZ` is also run.env.set.TZ (line 5); a variable is either passed, set or secret
              hint: keep it in one place; secrets are passed like pass but never shown in output
            """),
        BadManifest(name: "env key misspelt", yaml: "goal: { id: a }\nrun: { env: { secret: [TOKEN] } }\n", expected: """
            profiles/x.yaml:2: run.env.secret: unknown key `secret`
              hint: did you mean `secrets`?
            """),
    ]

    @Test(arguments: envCases)
    func envErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }
}
