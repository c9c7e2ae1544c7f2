import Testing
@testable import CorralProfile

/// Exact errors for `filesystem`: types, paths, patterns and contradictions between lists.
@Suite struct FilesystemErrorTests {
    // MARK: - Keys and types

    static let typeCases: [BadManifest] = [
        BadManifest(name: "key misspelt", yaml: "goal: { id: a }\nfilesystem:\n  wirte: [./out]\n", expected: """
            profiles/x.yaml:3: filesystem.wirte: unknown key `wirte`
              hint: did you mean `write`?
            """),
        BadManifest(name: "key unknown", yaml: "goal: { id: a }\nfilesystem:\n  mounts: []\n", expected: """
            profiles/x.yaml:3: filesystem.mounts: unknown key `mounts`
              hint: expected one of: read, write, exec, deny
            """),
        BadManifest(name: "list is a mapping", yaml: "goal: { id: a }\nfilesystem:\n  read:\n    usr: yes\n", expected: """
            profiles/x.yaml:4: filesystem.read: expected a list of paths, found a mapping
            """),
        BadManifest(name: "list is one string", yaml: "goal: { id: a }\nfilesystem:\n  read: /usr\n", expected: """
            profiles/x.yaml:3: filesystem.read: expected a list of paths, found a string
              hint: write a list, even for one path: [/usr]
            """),
        BadManifest(name: "list is empty", yaml: "goal: { id: a }\nfilesystem:\n  write:\n", expected: """
            profiles/x.yaml:3: filesystem.write: expected a list of paths, found null
              hint: write [] for an empty list
            """),
        BadManifest(name: "item is a list", yaml: "goal: { id: a }\nfilesystem:\n  read:\n    - [/usr, /lib]\n",
                    expected: """
            profiles/x.yaml:4: filesystem.read[0]: expected a path or { path, optional }, found a list
            """),
        BadManifest(name: "item is a bare ~", yaml: "goal: { id: a }\nfilesystem:\n  read: [~]\n", expected: """
            profiles/x.yaml:3: filesystem.read[0]: expected a path or { path, optional }, found null
              hint: a bare ~ is null in YAML; write "~" for the home folder
            """),
        BadManifest(name: "mapping item without path", yaml: """
            goal: { id: a }
            filesystem:
              read:
                - { optional: true }
            """, expected: """
            profiles/x.yaml:4: filesystem.read[0].path: missing required key `path`
              hint: write `{ path: /some/folder, optional: true }`
            """),
        BadManifest(name: "mapping item key misspelt", yaml: """
            goal: { id: a }
            filesystem:
              read:
                - { path: /usr, optinal: true }
            """, expected: """
            profiles/x.yaml:4: filesystem.read[0].optinal: unknown key `optinal`
              hint: did you mean `optional`?
            """),
        BadManifest(name: "optional is not a boolean", yaml: """
            goal: { id: a }
            filesystem:
              read:
                - { path: /usr, optional: maybe }
            """, expected: """
            profiles/x.yaml:4: filesystem.read[0].optional: expected true or false, found a string
            """),
        BadManifest(name: "mapping item path is a bare ~", yaml: """
            goal: { id: a }
            filesystem:
              read:
                - path: ~
                  optional: true
            """, expected: """
            profiles/x.yaml:4: filesystem.read[0].path: expected a path, found null
              hint: a bare ~ is null in YAML; write "~" for the home folder
            """),
    ]

    @Test(arguments: typeCases)
    func keyAndTypeErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - Paths and patterns

    static let pathCases: [BadManifest] = [
        BadManifest(name: "pattern in deny", yaml: "goal: { id: a }\nfilesystem:\n  deny: [~/.ssh, \"*.pem\"]\n",
                    expected: """
            profiles/x.yaml:3: filesystem.deny[1]: patterns are not supported in filesystem.deny yet
              hint: write the path literally; only filesystem.exec accepts `*`, `?` and `[`
            """),
        BadManifest(name: "** in deny", yaml: "goal: { id: a }\nfilesystem:\n  deny: [\"**/.env\"]\n", expected: """
            profiles/x.yaml:3: filesystem.deny[0]: patterns are not supported in filesystem.deny yet
              hint: write the path literally; only filesystem.exec accepts `*`, `?` and `[`
            """),
        BadManifest(name: "pattern in write", yaml: "goal: { id: a }\nfilesystem:\n  write: [./out?]\n", expected: """
            profiles/x.yaml:3: filesystem.write[0]: patterns are not supported in filesystem.write yet
              hint: write the path literally; only filesystem.exec accepts `*`, `?` and `[`
            """),
        BadManifest(name: "pattern in a read mapping item", yaml: """
            goal: { id: a }
            filesystem:
              read:
                - path: /data/[ab]
                  optional: true
            """, expected: """
            profiles/x.yaml:4: filesystem.read[0].path: patterns are not supported in filesystem.read yet
              hint: write the path literally; only filesystem.exec accepts `*`, `?` and `[`
            """),
        BadManifest(name: "** in exec", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr]
              exec: ["/usr/**/python3"]
            """, expected: """
            profiles/x.yaml:4: filesystem.exec[0]: `**` patterns are not supported in filesystem.exec yet
              hint: `*` matches within one folder; list each folder that holds programs
            """),
        BadManifest(name: "root is writable", yaml: "goal: { id: a }\nfilesystem:\n  write: [/tmp/../]\n", expected: """
            profiles/x.yaml:3: filesystem.write[0]: `/` cannot be writable; that would let the run change the whole host
              hint: list only the folders the goal writes to
            """),
        BadManifest(name: "~ without a home", yaml: "goal: { id: a }\nfilesystem:\n  read: [~/.config]\n", expected: """
            profiles/x.yaml:3: filesystem.read[0]: cannot resolve "~/.config": no home folder is known
              hint: write the absolute path, or set HOME
            """, home: nil),
        BadManifest(name: "another user's home", yaml: "goal: { id: a }\nfilesystem:\n  read: [~bob/src]\n", expected: """
            profiles/x.yaml:3: filesystem.read[0]: "~bob/src" names another user's home folder, which is not supported
              hint: write the absolute path
            """),
        BadManifest(name: "empty path", yaml: "goal: { id: a }\nfilesystem:\n  read: [\"\"]\n", expected: """
            profiles/x.yaml:3: filesystem.read[0]: the path is empty
              hint: name a file or folder, or remove the entry
            """),
        // Control characters would let a path forge lines in `corral explain` or drive the terminal.
        BadManifest(name: "newline in a read path", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr, "/srv/x\\nseccomp allow ptrace"]
            """, expected: """
            profiles/x.yaml:3: filesystem.read[1]: the path contains a control character
              hint: write the path without newlines, tabs or escape characters
            """),
        BadManifest(name: "tab in a write path", yaml: "goal: { id: a }\nfilesystem:\n  write: [\"./out\\tdir\"]\n",
                    expected: """
            profiles/x.yaml:3: filesystem.write[0]: the path contains a control character
              hint: write the path without newlines, tabs or escape characters
            """),
        BadManifest(name: "escape in a mapping item's path", yaml: """
            goal: { id: a }
            filesystem:
              read:
                - { path: "/usr/\\e[2J", optional: true }
            """, expected: """
            profiles/x.yaml:4: filesystem.read[0].path: the path contains a control character
              hint: write the path without newlines, tabs or escape characters
            """),
        BadManifest(name: "DEL in a deny path", yaml: "goal: { id: a }\nfilesystem:\n  deny: [\"/etc/x\\x7f\"]\n",
                    expected: """
            profiles/x.yaml:3: filesystem.deny[0]: the path contains a control character
              hint: write the path without newlines, tabs or escape characters
            """),
        BadManifest(name: "C1 control in an exec pattern", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr]
              exec: ["/usr/bin/\\u009b*"]
            """, expected: """
            profiles/x.yaml:4: filesystem.exec[0]: the path contains a control character
              hint: write the path without newlines, tabs or escape characters
            """),
        BadManifest(name: "non-ASCII letters are not control characters", yaml: """
            goal: { id: a }
            filesystem:
              read: [/srv/données, "/srv/\\u00a0nbsp"]
            """, expected: "loaded"),
    ]

    @Test(arguments: pathCases)
    func pathErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - Contradictions

    static let contradictionCases: [BadManifest] = [
        BadManifest(name: "writable and denied", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr]
              write:
                - ./out
                - /x
              deny:
                - /x
            """, expected: """
            profiles/x.yaml:8: filesystem.deny[0]: "/x" is also filesystem.write[1] (line 6); a path cannot be both writable and denied
              hint: remove one; deny is for paths inside an allowed tree, not the tree itself
            """),
        BadManifest(name: "denied first, then writable: the later one is reported", yaml: """
            goal: { id: a }
            filesystem:
              deny: [/x]
              write: [/x/]
            """, expected: """
            profiles/x.yaml:4: filesystem.write[0]: "/x" is also filesystem.deny[0] (line 3); a path cannot be both writable and denied
              hint: remove one; deny is for paths inside an allowed tree, not the tree itself
            """),
        BadManifest(name: "readable and denied", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr, /etc]
              deny: [/etc/]
            """, expected: """
            profiles/x.yaml:4: filesystem.deny[0]: "/etc" is also filesystem.read[1] (line 3); a path cannot be both readable and denied
              hint: remove one; deny is for paths inside an allowed tree, not the tree itself
            """),
        BadManifest(name: "readable and writable", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr, ./out]
              write: [out/]
            """, expected: """
            profiles/x.yaml:4: filesystem.write[0]: "/srv/agents/profiles/out" is also filesystem.read[1] (line 3); a path cannot be both read-only and writable
              hint: write implies read; list it once, under filesystem.write
            """),
        BadManifest(name: "same path twice", yaml: "goal: { id: a }\nfilesystem:\n  read: [/usr, /lib, /usr/]\n",
                    expected: """
            profiles/x.yaml:3: filesystem.read[2]: "/usr" is listed twice; first at filesystem.read[0] (line 3)
              hint: list each path once
            """),
        BadManifest(name: "same path twice once normalised", yaml: """
            goal: { id: a }
            filesystem:
              write:
                - ./out
                - out/tmp/..
            """, expected: """
            profiles/x.yaml:5: filesystem.write[1]: "/srv/agents/profiles/out" is listed twice; first at filesystem.write[0] (line 4)
              hint: list each path once
            """),
        // A bind inside a denied folder would be mounted over the mask and show what it hides.
        BadManifest(name: "read path under a deny path", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr, /srv/data/public]
              deny: [/srv/data]
            """, expected: """
            profiles/x.yaml:3: filesystem.read[1]: "/srv/data/public" lies under filesystem.deny[0] (line 4), which hides it
              hint: remove the entry or narrow the deny path
            """),
        BadManifest(name: "write path under a deny path, both relative", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr]
              deny:
                - /etc/ssh
                - ./out
              write:
                - { path: out/cache/, optional: true }
            """, expected: """
            profiles/x.yaml:8: filesystem.write[0]: "/srv/agents/profiles/out/cache" lies under filesystem.deny[1] (line 6), which hides it
              hint: remove the entry or narrow the deny path
            """),
        BadManifest(name: "a file under a denied home folder", yaml: """
            goal: { id: a }
            filesystem:
              write: [/srv/out]
              read: [/usr, "~/.ssh/config"]
              deny: ["~/.ssh"]
            """, expected: """
            profiles/x.yaml:4: filesystem.read[1]: "/home/ada/.ssh/config" lies under filesystem.deny[0] (line 5), which hides it
              hint: remove the entry or narrow the deny path
            """),
        BadManifest(name: "a deny path sharing a prefix does not hide", yaml: """
            goal: { id: a }
            filesystem:
              read: [/srv/database]
              write: [/srv/data-out]
              deny: [/srv/data]
            """, expected: "loaded"),
        BadManifest(name: "a deny path inside a read path is fine", yaml: """
            goal: { id: a }
            filesystem:
              read: [/etc]
              write: [/srv/out]
              deny: [/etc/ssh, /srv/out/secret]
            """, expected: "loaded"),
    ]

    @Test(arguments: contradictionCases)
    func contradictions(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }

    // MARK: - exec

    static let execCases: [BadManifest] = [
        BadManifest(name: "exec outside every read path", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr]
              exec: [/opt/tool/bin/run]
            """, expected: """
            profiles/x.yaml:4: filesystem.exec[0]: "/opt/tool/bin/run" is not under any filesystem.read path
              hint: add its folder to filesystem.read
            """),
        BadManifest(name: "pattern whose literal part ends mid-name", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr/bin/python3]
              exec: [/usr/bin/python3*]
            """, expected: """
            profiles/x.yaml:4: filesystem.exec[0]: "/usr/bin/python3*" is not under any filesystem.read path
              hint: add its folder to filesystem.read
            """),
        BadManifest(name: "exec under a write path", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr]
              write: [./build]
              exec: [./build/tool]
            """, expected: """
            profiles/x.yaml:5: filesystem.exec[0]: "/srv/agents/profiles/build/tool" lies under filesystem.write[0] (line 4), which is mounted noexec
              hint: programs must come from read-only paths; move it out of the write path
            """),
        BadManifest(name: "exec pattern under a write path", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr]
              write: [/work]
              exec: [/usr/bin/env, "/work/bin/*"]
            """, expected: """
            profiles/x.yaml:5: filesystem.exec[1]: "/work/bin/*" lies under filesystem.write[0] (line 4), which is mounted noexec
              hint: programs must come from read-only paths; move it out of the write path
            """),
        BadManifest(name: "exec under a deny path", yaml: """
            goal: { id: a }
            filesystem:
              read: [/usr]
              deny: [/usr/bin/sudo]
              exec: [/usr/bin/sudo]
            """, expected: """
            profiles/x.yaml:5: filesystem.exec[0]: "/usr/bin/sudo" lies under filesystem.deny[0] (line 4), which hides it
              hint: remove the exec entry or narrow the deny path
            """),
    ]

    @Test(arguments: execCases)
    func execErrors(_ bad: BadManifest) {
        #expect(Manifest.failure(bad.yaml, home: bad.home) == bad.expected)
    }
}
