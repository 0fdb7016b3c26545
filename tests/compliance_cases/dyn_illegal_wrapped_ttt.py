# The same wrapper around ttt_illegal_helper.py: the illegal TTT is found in the decoded source.
# expect-verdict: flag
# expect-hit: ttt_order flag ttt_before_scoring
# expect-hit: dynamic_code legal wrapper
import lzma as L,base64 as B
exec(L.decompress(B.b85decode("-~;Ia(p>-%hzAGZp!VwXsgZwRxg{Zjpum3G*C?`h$Ea{zG7W+1r<q*O#f`E71L&U}ufXP$R>VsCC{~VOBE@h~EZJd=^S5z?lgK$L"
"rLk+LAf&k~UEsvR=)PNWPR7+TIx+SK8yEOH`&b)J`#rm<CHT|rD~~q;M-bCzH^`-JzWLTj73k$7^e*xlFxOe{++`q#5MBTn`()vp"
"lyf#yCJ2hg0nTZd@H($vFm4^Wf=z@uF?}47GU!}jtcx>f4qNIKs0zK24Xs6r7!U$gSnNF+GiIfxIB}o<n-VG6f$RQ+;^y#}wa`{W"
"e;cP`-y7Uk;`Cb(Z}06f37RePkmt8Qf^$UnYJl|2XURHXc)5RNBx;7<MG=2};*p>nlz_iCFk1>HINasWQk{%xpT}(d&K9;4LE(W}"
"V?e;bLEhMWGwi&J^i=-s7ow6KTx*0_LFA|2?TEzkLRxPXYY|+{O7d}Rze7j`FR-eZZWPcvhKS3oYCTg#DKceU0$s-Yt1wma4h4=#"
">olA0=dh~`OWly2_x~7r3T#q8+8fAOFaooFGdY`&Tcf0ONtk*Z=kJIdc}6%4yl26LniJ@)rSQe0gn-|9q>9r~X!Q+n000"),format=L.FORMAT_RAW,filters=[{"id":L.FILTER_LZMA2}]))
