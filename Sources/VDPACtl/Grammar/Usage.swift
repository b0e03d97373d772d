/// The usage texts, in iproute2's wording where `vdpa` has the command.
public enum Usage {
    public static func text(_ topic: HelpTopic) -> String {
        switch topic {
        case .main:
            """
            Usage: vdpactl [ OPTIONS ] OBJECT { COMMAND | help }
            where  OBJECT := { mgmtdev | dev | port | vq | profile | caps | compat | quirk | daemon | monitor }
                   OPTIONS := { -V[ersion] | -j[son] | -p[retty] | -h[elp] | --socket PATH }

            """ + text(.mgmtdev) + text(.dev) + text(.port) + text(.vq) + text(.profile) + text(.caps) + text(.compat) + text(.quirk) + text(.daemon) + text(.monitor)
        case .mgmtdev:
            """
            Usage: vdpactl mgmtdev show [ [BUS/]NAME ]

            """
        case .dev:
            """
            Usage: vdpactl dev show [ DEV ]
                   vdpactl dev add name NAME mgmtdev MANAGEMENTDEV [ device_features DEVICE_FEATURES ]
                                                                   [ mac MACADDR ] [ mtu MTU ]
                                                                   [ max_vqp MAX_VQ_PAIRS ]
                                                                   [ driver { vhost_vdpa | virtio_vdpa } ]
                                                                   [ profile PROFILE ]
                   vdpactl dev del DEV [ force ]
                   vdpactl dev set name DEV mac MACADDR
                   vdpactl dev bind DEV driver { vhost_vdpa | virtio_vdpa | none }

            """ + text(.devConfig) + text(.devVstats)
        case .devConfig:
            """
            Usage: vdpactl dev config show [ DEV ]

            """
        case .devVstats:
            """
            Usage: vdpactl dev vstats show DEV qidx QUEUE_INDEX

            """
        case .port:
            """
            Usage: vdpactl port show [ PORT ]
                   vdpactl port add name PORT [ profile PROFILE ] [ dev DEV | tap TAP [ queues N ] ] [ user USER ] [ group GROUP ]
                   vdpactl port del PORT
                   vdpactl port set PORT { dev DEV | tap TAP [ queues N ] | detach }

            """
        case .vq:
            """
            Usage: vdpactl vq show [ STATE ]
                   vdpactl vq save dev DEV [ name STATE ] [ resume ] [ replace ]
                   vdpactl vq export STATE [ file FILE ]
                   vdpactl vq import FILE [ name STATE ] [ replace ]
                   vdpactl vq restore STATE dev DEV [ port PORT ]
                   vdpactl vq del STATE

            """
        case .profile:
            """
            Usage: vdpactl profile show [ PROFILE ]
                   vdpactl profile add FILE
                   vdpactl profile del PROFILE

            """
        case .caps:
            """
            Usage: vdpactl caps export

            """
        case .compat:
            """
            Usage: vdpactl compat check { profile PROFILE | dev DEV } [ to ]
                                        { mgmtdev MANAGEMENTDEV | caps FILE [ mgmtdev MANAGEMENTDEV ] }
                   vdpactl compat baseline [ FILE... ] [ local ] [ type { net | block } ] [ name NAME ]
                   exit status: 0 identical, 1 superset, 2 incompatible (or no baseline), 3 error

            """
        case .quirk:
            """
            Usage: vdpactl quirk show
                   vdpactl quirk test FILE
                   exit status of test: 0 the file is good, 2 it has errors

            """
        case .daemon:
            """
            Usage: vdpactl daemon status

            """
        case .monitor:
            """
            Usage: vdpactl monitor

            """
        }
    }
}
