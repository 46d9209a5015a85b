// nodetool commands, one after another, in one JVM (l1db/cassandra/nodetool.py, NodeToolSession).
//
// A nodetool JVM costs about 1.5 s of CPU to start; a save or a restore of a
// state runs one command per node and table. This runs each command line read
// from standard input (its arguments separated by tabs) with the same NodeTool
// of the same jars, and answers on standard output with one line per command:
//     STATUS <tab> base64(what the command printed) <tab> base64(what it printed as errors)
// after a first line "ready" once it can run them.
// Launched as a single-file source program (java ... NodeToolSession.java), compiled
// in memory: NodeTool's own factory of JMX connections is package-private, hence
// made through reflection (every package of the class path is open to it).
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.lang.reflect.Constructor;
import java.util.Base64;
import org.apache.cassandra.tools.INodeProbeFactory;
import org.apache.cassandra.tools.NodeTool;
import org.apache.cassandra.tools.Output;

public final class NodeToolSession {
    private NodeToolSession() {
    }

    public static void main(String[] unused) throws Exception {
        PrintStream answers = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        BufferedReader commands = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Base64.Encoder base64 = Base64.getEncoder();
        Constructor<?> made = Class.forName("org.apache.cassandra.tools.NodeProbeFactory").getDeclaredConstructor();
        made.setAccessible(true);
        INodeProbeFactory probes = (INodeProbeFactory) made.newInstance();
        // Logging set up before any command, its start-up lines (on standard output) dropped: they are
        // neither a command's output nor an answer.
        PrintStream dropped = new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8);
        System.setOut(dropped);
        System.setErr(dropped);
        org.slf4j.LoggerFactory.getLogger(NodeToolSession.class);
        answers.println("ready");
        String line;
        while ((line = commands.readLine()) != null) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            PrintStream outStream = new PrintStream(out, true, StandardCharsets.UTF_8);
            PrintStream errStream = new PrintStream(err, true, StandardCharsets.UTF_8);
            // Some commands print to System.out/err rather than to their Output: both are the command's.
            System.setOut(outStream);
            System.setErr(errStream);
            int status;
            try {
                status = new NodeTool(probes, new Output(outStream, errStream))
                        .execute(line.split("\t", -1));
            } catch (Throwable t) {
                t.printStackTrace(errStream);
                status = 2;
            }
            outStream.flush();
            errStream.flush();
            answers.println(status + "\t" + base64.encodeToString(out.toByteArray()) + "\t"
                    + base64.encodeToString(err.toByteArray()));
        }
    }
}
